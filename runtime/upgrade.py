"""An upgrade never runs old code: long-lived processes notice when their sources change.

The executor (before each request) and the daemon (every few seconds) compare the
modification times of the ``omc`` modules they loaded with what is on disk, and
re-execute themselves when one changed (a package upgrade, a ``git pull`` in a
development tree), so a node never runs a mix of old and new code for long.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path


def loaded_sources() -> dict[str, int]:
    """The source file of every loaded ``omc`` module, with its mtime."""
    sources: dict[str, int] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and getattr(module, "__name__", "").startswith("omc."):
            with contextlib.suppress(OSError):
                sources[path] = Path(path).stat().st_mtime_ns
    return sources


def stale(sources: dict[str, int]) -> bool:
    """True when a loaded module's source changed since it was loaded."""
    for path, mtime in sources.items():
        try:
            if Path(path).stat().st_mtime_ns != mtime:
                return True
        except OSError:
            return True
    return False
