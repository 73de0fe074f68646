"""Properties of emission over arbitrary values: an error or well-formed units, never a crash."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from omc.compiler import ir
from omc.compiler.emit import EmitError, emit

SPAN = ir.SourceSpan(file="/etc/opensvc/p.conf", line=1, column=1)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
WORD = st.text(min_size=1, max_size=8)
LINE = re.compile(r"^(|#.*|\[(Unit|Service|Mount|Slice|Timer)\]|[A-Za-z][A-Za-z0-9-]*=.*)$")


@st.composite
def services(draw: st.DrawFn) -> ir.Service:
    app = ir.AppResource(
        rid=f"app#{draw(WORD)}",
        group=ir.Group.APP,
        driver="app.forking",
        span=SPAN,
        start=(draw(st.sampled_from(["/bin/true", "touch", "-x", "a/b"])), *draw(st.lists(TEXT))),
        environment=tuple(
            draw(st.lists(st.tuples(st.from_regex(r"[A-Z_]{1,4}", fullmatch=True), TEXT)))
        ),
        user=draw(st.none() | TEXT),
        cwd=draw(st.none() | TEXT.map(lambda t: "/" + t)),
        tags=frozenset(draw(st.lists(WORD, max_size=3))),
        subset=draw(st.none() | WORD),
        config=(("k", draw(TEXT)),),
    )
    fs = ir.FsResource(
        rid=f"fs#{draw(WORD)}",
        group=ir.Group.FS,
        driver="fs.ext4",
        span=SPAN,
        fs_type="ext4",
        is_mountable=True,
        dev=draw(TEXT),
        mnt="/" + draw(TEXT),
        mnt_opt=draw(st.none() | TEXT),
    )
    return ir.Service(
        path=ir.ObjectPath(namespace=draw(st.just("root") | WORD), name=draw(WORD)),
        id=draw(TEXT),
        source="/etc/opensvc/" + draw(TEXT),
        node="n1",
        resources=(app, fs),
    )


@settings(max_examples=120, deadline=None)
@given(services())
def test_emit_gives_units_or_an_emit_error(service: ir.Service) -> None:
    """Arbitrary values give well-formed one-line settings, or an EmitError; nothing else."""
    try:
        units = emit(service, om="/usr/bin/om")
    except EmitError as exc:
        assert exc.message
        return
    for name, text in units.items():
        assert "\n" not in name and "/" not in name and len(name) <= 255
        for line in text.splitlines():
            assert LINE.match(line), (name, line)
        assert text.count("[Unit]") == 1
