"""The compiler's private cache directory (jinja2's compiled templates).

The cache holds executable data (marshalled code objects), so it lives in a
directory only this user can write: ``$XDG_CACHE_HOME/omc`` or ``~/.cache/omc``
with mode 0700, never the shared ``/tmp``, where a file another user planted
would be loaded. When the directory cannot be made private the cache is off:
everything still works, only start-up is slower. (The grammar needs no cache:
its parse tables are checked in, see :mod:`.regen_parser`.)
"""

from __future__ import annotations

import os
from pathlib import Path


def private_cache_dir() -> Path | None:
    """The cache directory, created private; None when it is not (or cannot be) ours."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "omc"
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = base.stat()
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return base
