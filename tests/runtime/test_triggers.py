"""Trigger keywords → ordered trigger commands (pure)."""

from __future__ import annotations

import io

import pytest
from omc.runtime.engine.triggers import TriggerError, run, triggers
from omc.runtime.log import ConsoleSink, action_log


def test_blocking_first_and_split() -> None:
    """Blocking triggers come first; strings are shlex-split, lists taken as argv."""
    config = {"pre_start": "echo 'a b'", "blocking_pre_start": ["true"], "post_stop": "x"}
    got = triggers("fs#1", config, "pre", "start")
    assert [(t.blocking, t.argv) for t in got] == [(True, ("true",)), (False, ("echo", "a b"))]
    assert triggers("fs#1", config, "post", "start") == ()


@pytest.mark.parametrize(("blocking", "raises"), [(True, True), (False, False)])
def test_failure_raises_only_when_blocking(blocking: bool, raises: bool) -> None:
    """A failing blocking trigger raises; a non-blocking one logs a warning."""
    out = io.StringIO()
    log = action_log("svc0", action="start", console=ConsoleSink(out), journal=False)
    key = "blocking_pre_start" if blocking else "pre_start"
    (trigger,) = triggers("fs#1", {key: ["sh", "-c", "echo out; echo err >&2; exit 3"]}, "pre",
                          "start")  # fmt: skip
    if raises:
        with pytest.raises(TriggerError):
            run(trigger, log, {})
    else:
        run(trigger, log, {})
    text = out.getvalue()
    assert "INF svc0: fs#1: out" in text and "ERR svc0: fs#1: err" in text
