"""The 102 real OpenSVC configs: each compiles, or is rejected for unsupported constructs only.

``docs/compat.md`` lists every corpus file with its outcome and reason; it is
generated from the compiler itself, and a test fails when it is out of date
(rewrite it with ``OMC_UPDATE_GOLDEN=1 pytest tests/compiler/test_corpus.py``).

The corpus lives in the shared reference folder (``/work/shared`` on the
development machines, ``../shared`` beside a CI clone); ``OMC_CORPUS`` overrides.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from omc.compiler.diagnostics import Diagnostic, Severity
from omc.compiler.pipeline import Build, build

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "docs" / "compat.md"
NODE = "n1"
CLUSTER = {"clustername": "corpus"}
UPDATE = os.environ.get("OMC_UPDATE_GOLDEN") == "1"

# Diagnostic codes of valid om3 constructs that omc does not run: om3 drivers omc's
# runtime lacks, and a command whose program lives in a volume resolved only at run
# time (om3 resolves `{volume#x.mnt}` when the vol object is up; a unit needs it now).
OMC_UNSUPPORTED_CODES = frozenset({"unsupported-driver", "unsupported-reference"})
# Diagnostic codes of v1/v2-only sections, drivers and keywords: om3 removed them too.
LEGACY_CODES = frozenset({"legacy-driver", "legacy-section", "legacy-keyword", "v2-only"})
# "Valid OpenSVC (once), but not something omc can honour."
UNSUPPORTED_CODES = OMC_UNSUPPORTED_CODES | LEGACY_CODES
NOT_RUN = "not run by omc:"
V1_V2 = "v1/v2 syntax:"

# Files rejected for another reason than an unsupported construct: the file is not a
# complete valid config for om3 either. file -> (error codes, why), checked exactly.
NOT_VALID_FOR_OM3: dict[str, tuple[frozenset[str], str]] = {
    "docs-app-full-section-limits.conf": (
        frozenset({"invalid-value"}),
        "om3 rejects it too: `limit_cpu`/`limit_core = 1-4` is neither a duration nor a size",
    ),
    "docs-references-env-devs.conf": (
        frozenset({"missing-type"}),
        "documentation fragment: `[disk#0]` has no `type`, which om3 requires",
    ),
    "docs-scoping-fs-type-drpnodes.conf": (
        frozenset({"missing-keyword"}),
        "documentation fragment: `[fs#1]` has no `mnt`, which om3 requires",
    ),
    "docs-scoping-precedence-share.conf": (
        frozenset({"missing-type"}),
        "documentation fragment: `[share#1]` has no `type`, which om3 requires",
    ),
    "om3-imon-orchestrate-invalid-started-fs-flag.conf": (
        frozenset({"invalid-value"}),
        "om3 test fixture of an invalid value (`orchestrate = started`)",
    ),
}

# Files that fail because of a known omc gap (reported; strict xfail): file -> reason.
KNOWN_GAPS: dict[str, str] = {}


def corpus_dir() -> Path:
    """Where the corpus is: ``$OMC_CORPUS``, or the shared folder of this checkout."""
    candidates = [
        os.environ.get("OMC_CORPUS", ""),
        str(ROOT.parent / "shared" / "corpus" / "opensvc"),
        "/work/shared/corpus/opensvc",
    ]
    for candidate in candidates:
        if candidate and any(Path(candidate).glob("*.conf")):
            return Path(candidate)
    raise FileNotFoundError("no OpenSVC corpus found; set OMC_CORPUS")


CORPUS = sorted(corpus_dir().glob("*.conf"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One corpus file's outcome, as docs/compat.md shows it."""

    file: str
    outcome: str
    reason: str


def compile_corpus_file(file: Path, *, om: str = "/usr/bin/om") -> Build:
    text = file.read_bytes().decode("utf-8", errors="replace")
    return build(text, filename=file.name, node=NODE, om=om, cluster=CLUSTER)


def summarize(diags: Iterable[Diagnostic], severity: Severity, limit: int = 3) -> str:
    """Distinct messages of one severity, with their first line, for the table."""
    seen: dict[str, int] = {}
    for diag in diags:
        if diag.severity is severity and diag.message not in seen:
            seen[diag.message] = diag.span.line if diag.span else 0
    parts = [f"l.{line}: {msg}" if line else msg for msg, line in seen.items()]
    more = f" (+{len(parts) - limit} more)" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def entry(file: Path) -> Entry:
    result = compile_corpus_file(file)
    warnings = sum(1 for d in result.diagnostics if d.severity is Severity.WARNING)
    if not result.ok:
        reason = summarize(result.diagnostics, Severity.ERROR)
        if file.name in NOT_VALID_FOR_OM3:
            reason = f"{NOT_VALID_FOR_OM3[file.name][1]}. {reason}"
        elif file.name in KNOWN_GAPS:
            reason = f"**omc gap**: {reason}"
        elif {d.code for d in result.diagnostics if d.is_error} & OMC_UNSUPPORTED_CODES:
            reason = f"{NOT_RUN} {reason}"
        else:
            reason = f"{V1_V2} {reason}"
        return Entry(file=file.name, outcome="rejected", reason=reason)
    outcome = "compiled" if result.units else f"no units ({result.path.kind})"
    if warnings:
        outcome += f" ({warnings} warning{'s' * (warnings > 1)})"
    return Entry(
        file=file.name, outcome=outcome, reason=summarize(result.diagnostics, Severity.WARNING)
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "-"


def render(entries: list[Entry]) -> str:
    """The whole of docs/compat.md."""
    compiled = sum(e.outcome.startswith("compiled") for e in entries)
    no_units = sum(e.outcome.startswith("no units") for e in entries)
    rejected = sum(e.outcome == "rejected" for e in entries)
    not_run = sum(e.reason.startswith(NOT_RUN) for e in entries)
    legacy = sum(e.reason.startswith(V1_V2) for e in entries)
    gaps = sum(e.reason.startswith("**omc gap**") for e in entries)
    invalid = rejected - not_run - legacy - gaps
    lines = [
        "# Compatibility with the OpenSVC corpus",
        "",
        "Generated by `tests/compiler/test_corpus.py` from the compiler itself; a test fails",
        "when an outcome here is out of date (`OMC_UPDATE_GOLDEN=1 pytest",
        f"tests/compiler/test_corpus.py` rewrites it). Every file is compiled for node `{NODE}`.",
        "The corpus and the origin of each file: `shared/corpus/opensvc/SOURCES.md`.",
        "",
        f"**{len(entries)} files: {compiled} compiled, {no_units} without units (cfg/sec/usr "
        f"objects: parsed and validated), {rejected} rejected**:",
        "",
        f"* {not_run} for constructs om3 runs but omc does not (`{NOT_RUN}`): om3 drivers "
        "omc's runtime has no driver for (docs/drivers.md says what to use instead), commands "
        "that need a volume resolved at run time;",
        f"* {legacy + invalid} that om3 rejects as well: {legacy} with v1/v2-only sections, "
        f"drivers or keywords that om3 removed (`{V1_V2}`), {invalid} invalid for om3 (invalid "
        "values, documentation fragments);",
        f"* {gaps} because of a known omc gap.",
        "",
        "Each reason is the compiler's own diagnostic, with its line.",
        "",
        "| File | Outcome | Reason (errors, or warnings when compiled) |",
        "|---|---|---|",
    ]
    lines += [f"| `{e.file}` | {e.outcome} | {_cell(e.reason)} |" for e in entries]
    return "\n".join(lines) + "\n"


def _corpus_param(file: Path) -> object:
    gap = KNOWN_GAPS.get(file.name)
    marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
    return pytest.param(file, marks=marks, id=file.stem)


@pytest.mark.parametrize("file", [_corpus_param(f) for f in CORPUS])
def test_corpus_file_compiles_or_is_rejected_for_unsupported_constructs_only(file: Path) -> None:
    """No exception; a rejection has spans and only 'unsupported' codes (or a listed reason)."""
    result = compile_corpus_file(file)
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    codes = {d.code for d in errors}
    assert all(d.span is not None for d in errors), errors
    if file.name in NOT_VALID_FOR_OM3:
        assert codes == NOT_VALID_FOR_OM3[file.name][0], [(d.code, d.message) for d in errors]
    else:
        assert codes <= UNSUPPORTED_CODES, [(d.code, d.message) for d in errors]
    if result.ok and result.path.kind in ("svc", "vol"):
        assert result.units, "a valid service produces units"


def test_corpus_has_the_102_files_of_sources_md() -> None:
    """The acceptance set is the whole corpus, not a subset that happens to pass."""
    assert len(CORPUS) == 102


def outcomes(markdown: str) -> dict[str, str]:
    """File -> outcome class (compiled, rejected, no units) from the compat table."""
    rows = [line.split(" | ") for line in markdown.splitlines() if line.startswith("| `")]
    return {row[0].strip("| `"): row[1].split(" (")[0] for row in rows}


def test_compat_doc_is_current() -> None:
    """docs/compat.md lists every corpus file with the outcome the compiler gives today.

    The outcome of each file must match exactly; the reason texts (the compiler's own
    messages) are refreshed whenever the file is regenerated.
    """
    text = render([entry(f) for f in CORPUS])
    if UPDATE:
        COMPAT.write_text(text)
    current = outcomes(COMPAT.read_text())
    assert current == outcomes(text), "docs/compat.md is stale: regenerate it (module doc)"
    assert len(current) == len(CORPUS)
