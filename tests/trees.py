"""Scratch config trees for tests: files written under a directory from a mapping."""

from __future__ import annotations

from pathlib import Path


def layout(root: Path, files: dict[str, str]) -> None:
    """Write ``{relative path: text}`` under ``root``, creating directories."""
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
