"""Every real corpus config goes through ``compile_file`` without an exception.

Acceptance (which files compile, which are rejected and why) is
``test_corpus.py``'s job; this one guards the front end itself: no
traceback, every diagnostic located in the file, a service whenever the
file is accepted.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omc.compiler.pipeline import compile_file

ROOT = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path:
    """``$OMC_CORPUS``, the shared folder beside this checkout, or the dev machine's."""
    for candidate in (
        os.environ.get("OMC_CORPUS", ""),
        str(ROOT.parent / "shared" / "corpus" / "opensvc"),
        "/work/shared/corpus/opensvc",
    ):
        if candidate and any(Path(candidate).glob("*.conf")):
            return Path(candidate)
    raise FileNotFoundError("no OpenSVC corpus found; set OMC_CORPUS")


CORPUS = sorted(corpus_dir().glob("*.conf"))


def test_the_corpus_is_there() -> None:
    """The 102 files of the shared corpus are found."""
    assert len(CORPUS) >= 100


@pytest.mark.parametrize("file", CORPUS, ids=[f.stem for f in CORPUS])
def test_corpus_file_compiles_without_exception(file: Path) -> None:
    """compile_file returns a Result; diagnostics point inside the file."""
    result = compile_file(file, node="n1")
    lines = file.read_text(errors="replace").count("\n") + 1
    for diag in result.diagnostics:
        if diag.span is not None:
            assert 1 <= diag.span.line <= lines, diag
            assert diag.span.column >= 1, diag
    if result.ok and result.path.kind in ("svc", "vol"):
        assert result.service is not None
