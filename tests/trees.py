"""Scratch config trees for tests: files written under a directory from a mapping."""

from __future__ import annotations

from pathlib import Path


def layout(root: Path, files: dict[str, str]) -> None:
    """Write ``{relative path: text}`` under ``root``, creating directories."""
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def scratch_env(root: Path) -> dict[str, str]:
    """The environment of an ``om`` child process whose every directory (configs, state,
    locks, units) lives under ``root``, run in-process (no executor), for node ``n1``:
    what ``om`` does before it needs systemd, tested without a lab."""
    import os

    return {
        **os.environ,
        "OMC_ETC": str(root / "etc"),
        "OMC_VAR": str(root / "var"),
        "OMC_RUN": str(root / "run"),
        "OMC_UNIT_DIR": str(root / "units"),
        "OMC_EXECUTOR": "0",
        "OMC_NODE": "n1",
    }
