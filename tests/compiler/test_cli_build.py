"""`build()`: one failure channel (diagnostics), and the exit-status ordering of `omc`."""

from __future__ import annotations

import pytest
from omc.compiler import ir
from omc.compiler import pipeline as build_module
from omc.compiler.exitcodes import ExitStatus
from omc.compiler.pipeline import Result, build

SPAN = ir.SourceSpan(file="/etc/opensvc/svc0.conf", line=7, column=1)


def fake_front_end(service: ir.Service) -> object:
    def compile_text(text: str, **kwargs: object) -> Result:
        return Result(path=service.path, service=service, diagnostics=())

    return compile_text


def test_an_emit_error_becomes_an_error_diagnostic_with_the_section_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A resource no unit can express is reported at its section, never raised."""
    fs = ir.FsResource(
        rid="fs#1", group=ir.Group.FS, driver="fs.ext4", span=SPAN, fs_type="ext4",
        is_mountable=True, dev="/dev/sda1", mnt=None,
    )  # fmt: skip
    service = ir.Service(
        path=ir.ObjectPath(name="svc0"), id="x", source=SPAN.file, node="n1", resources=(fs,)
    )
    monkeypatch.setattr(build_module, "compile_text", fake_front_end(service))
    result = build("", filename="svc0.conf", node="n1", om="/usr/bin/om")
    assert not result.ok
    assert result.units == {}
    (diag,) = result.diagnostics
    assert diag.code == "emit-error"
    assert diag.span is not None
    assert (diag.span.file, diag.span.line) == ("svc0.conf", 7)
    assert diag.message.startswith("cannot express [fs#1] as a unit: ")


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ((), ExitStatus.OK),
        ((ExitStatus.OK, ExitStatus.DIFFERS), ExitStatus.DIFFERS),
        ((ExitStatus.DIFFERS, ExitStatus.CONFIG_ERROR), ExitStatus.CONFIG_ERROR),
        ((ExitStatus.CONFIG_ERROR, ExitStatus.IO_ERROR, ExitStatus.OK), ExitStatus.IO_ERROR),
        ((ExitStatus.IO_ERROR, ExitStatus.INTERNAL), ExitStatus.INTERNAL),
    ],
)
def test_worst_status_wins(codes: tuple[ExitStatus, ...], expected: ExitStatus) -> None:
    """Several files, one exit status: the most severe outcome."""
    assert ExitStatus.worst(*codes) is expected
