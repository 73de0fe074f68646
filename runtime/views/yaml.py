"""``--format yaml``, for every command that has it: the only ruamel.yaml importer.

YAML 1.2 as ruamel.yaml writes it (the user's package list names it), block style,
keys in the order the data gives them.
"""

from __future__ import annotations

import io


def dump(data: object) -> str:
    """``data`` (dicts, lists, scalars) as a YAML document."""
    from ruamel.yaml import YAML  # imported only when YAML is asked for

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
