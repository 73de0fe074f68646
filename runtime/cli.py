"""``om``: the command-line entry point. Dispatches, imports lazily (hot path).

``om <path> driver …`` is what every driver-backed unit runs, once per resource
per action: it is routed here, before the object CLI (and its imports) loads.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Hand the command to the node executor when one serves (its modules are already
    imported, see :mod:`omc.runtime.executor.server`), else run it here."""
    args = sys.argv[1:] if argv is None else argv
    from omc.runtime.executor.client import delegate

    code = delegate(args)
    if code is None:
        return dispatch(args)
    if argv is None:  # the `om` process itself: nothing of its own left to tear down
        sys.stderr.flush()
        os._exit(code)
    return code


def dispatch(args: list[str]) -> int:
    """Route ``om lab …`` to the lab CLI, ``om executor …`` to the executor, ``om <path>
    driver …`` to the driver entry point, and everything else to the object CLI."""
    if args[:1] == ["executor"]:
        from omc.runtime.executor.server import main as executor_main

        return executor_main(args[1:])
    if len(args) >= 2 and args[1] == "driver":
        from omc.runtime.drivers.entry import main as driver_main

        return driver_main(args[0], args[2:])
    if args[:1] in (["mon"], ["monitor"], ["daemon"], ["cluster"], ["node"]):
        from omc.runtime.cluster.cli import main as cluster_main

        return cluster_main(args)
    if args[:1] == ["collector"]:
        from omc.runtime.collector.cli import main as collector_main

        return collector_main(args[1:])
    if args[:1] == ["lab"]:
        from omc.runtime.lab.cli import main as lab_main

        return lab_main(args[1:])
    from omc.runtime.objcli import main as obj_main

    return obj_main(args)
