"""Random and mutated configs only ever yield diagnostics, never an exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omc.compiler.keywords import table
from omc.compiler.pipeline import compile_text

from .test_lower_corpus import CORPUS

KEYWORDS = sorted({k.name for k in table()} | {"bogus", "ipnme", ""})
SECTIONS = [
    "DEFAULT", "default", "env", "data", "ip#0", "ip#1", "fs#1", "fs#2", "disk#0", "app#web",
    "container#0", "sync#0", "task#t", "volume#v", "share#1", "subset#app:s", "vg#1", "hb#1",
    "subset#x", "ip#", "weird",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(
        [
            "", "true", "no", "10", "1h30m", "1g", "60%FREE", "flag", "ext4", "hpvm", "@10m",
            "04:00-06:00@60 sat", "{name}", "{env.x}", "{fs#1.mnt}", "{#nodes}", "{nodes[9]}",
            "{upper:nodename}", "{fs#2.mnt}", "ip#0(up)", "sh -c 'a ; b'", "'unclosed",
            "0:up 1:down", "n1 n2", "{", "}", "{{}}", "crypt:x",
        ]
    ),
    st.text(max_size=20),
)  # fmt: skip
SCOPES = st.sampled_from(["", "@n1", "@nodes", "@drpnodes", "@encapnodes", "@flex_primary", "@"])

LINE = st.one_of(
    st.builds(lambda s: f"[{s}]", st.sampled_from(SECTIONS)),
    st.builds(
        lambda k, s, d, v: f"{k}{s}{d}{v}",
        st.sampled_from(KEYWORDS),
        SCOPES,
        st.sampled_from([" = ", "=", ": ", " "]),
        VALUES,
    ),
    st.sampled_from(["", "# comment", "; comment", "  continued", "\t{env.x}", "[", "]", "="]),
)
CONFIG = st.lists(LINE, max_size=30).map("\n".join)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def compiles_cleanly(text: str) -> None:
    result = compile_text(text, filename="h.conf", node="n1")
    lines = text.count("\n") + 2
    for diag in result.diagnostics:
        assert diag.message
        assert diag.span is None or 1 <= diag.span.line <= lines


@FAST
@given(CONFIG)
def test_random_configs_never_raise(text: str) -> None:
    """Configs assembled from real keywords, scopes and hostile values only give diagnostics."""
    compiles_cleanly(text)


@FAST
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    """Any text at all, including control characters and lone CRs."""
    compiles_cleanly(text)


@st.composite
def mutated_corpus(draw: st.DrawFn) -> str:
    """A corpus file with a few random edits: deletions, insertions, line swaps."""
    text = Path(draw(st.sampled_from(CORPUS))).read_text(errors="replace")
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not text:
            break
        pos = draw(st.integers(min_value=0, max_value=len(text) - 1))
        op = draw(st.sampled_from(["delete", "insert", "swap", "duplicate"]))
        if op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 20)) :]
        elif op == "insert":
            text = (
                text[:pos]
                + draw(
                    st.sampled_from(
                        ["{", "}", "[", "]", "=", "@", "#", ";", "\n", "\n  ", "'", "{env.", "\r"]
                    )
                )
                + text[pos:]
            )
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if op == "swap":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.insert(j, lines[i])
            text = "\n".join(lines)
    return text


@FAST
@given(mutated_corpus())
def test_mutated_corpus_files_never_raise(text: str) -> None:
    """Real configs, randomly damaged, only ever yield diagnostics."""
    compiles_cleanly(text)
