"""``om``: the command-line entry point. Dispatches, imports lazily (hot path)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Route ``om lab …`` to the lab CLI and everything else to the object CLI."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["lab"]:
        from omc.runtime.lab.cli import main as lab_main

        return lab_main(args[1:])
    from omc.runtime.objcli import main as obj_main

    return obj_main(args)
