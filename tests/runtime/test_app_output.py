"""Reading an app's output back from journald after its job (the decisions around the
reads; the reads themselves run in tests/runtime/test_logs_lab.py)."""

from __future__ import annotations

import dataclasses

import pytest
from omc.compiler.contract.paths import ObjectPath
from omc.runtime.adapters import journal
from omc.runtime.engine import narrate
from omc.runtime.engine.apply import Applier
from omc.runtime.engine.plan import Op, Step
from omc.runtime.log import Level, Record, action_log
from omc.runtime.objects.model import ObjectModel, ResourceModel

RES = ResourceModel(rid="app#0", driver="app.forking", unit="a.service", config={})
MODEL = ObjectModel(path=ObjectPath(name="svc0"), target="t.target", id="i", source="s",
                    config={"orchestrate": "no"}, resources=(RES,), units=())  # fmt: skip


@dataclasses.dataclass
class Jobs:
    asked: list[tuple[str, Op]] = dataclasses.field(default_factory=list)

    def exec_pids(self, unit: str, op: Op) -> list[int]:
        self.asked.append((unit, op))
        return [42]


class Lines:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def emit(self, record: Record) -> None:
        if record.level is not Level.DEBUG:  # what the console shows
            self.messages.append(record.message)


def read_back(monkeypatch: pytest.MonkeyPatch, sync_error: OSError | None) -> tuple[
        list[str], Jobs, list[tuple[str, tuple[int, ...]]]]:  # fmt: skip
    """What ``_outputs`` logs of a started app whose journal has one line, when
    journald's synchronize answers (None) or fails with ``sync_error``."""
    reads: list[tuple[str, tuple[int, ...]]] = []

    def synchronize() -> None:
        if sync_error is not None:
            raise sync_error

    def stream_lines(unit: str, since: int, *, pids: tuple[int, ...] = ()) -> tuple[
            list[journal.StreamLine], int]:  # fmt: skip
        reads.append((unit, tuple(pids)))
        return [journal.StreamLine(message="out", priority=6, pid=42, usec=since + 1)], 0

    monkeypatch.setattr(journal, "synchronize", synchronize)
    monkeypatch.setattr(journal, "stream_lines", stream_lines)
    monkeypatch.setattr(narrate, "streamed", lambda res: True)
    sink, jobs = Lines(), Jobs()
    log = action_log("svc0", action="start", journal=False, extra_sinks=(sink,))
    applier = Applier(jobs=jobs, model=MODEL, log=log)  # type: ignore[arg-type]
    applier._outputs(Step(rid="app#0", unit="a.service", op=Op.START), RES, log)
    return sink.messages, jobs, reads


def test_the_lines_of_the_unit_and_of_its_commands_pids_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    messages, jobs, reads = read_back(monkeypatch, None)
    assert messages == ["out"]
    assert jobs.asked == [("a.service", Op.START)]
    assert reads == [("a.service", (42,))]


def test_a_journald_too_slow_to_confirm_still_gets_its_lines_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Synchronize timed out (journald busy on a loaded machine): what it has is read,
    not dropped."""
    messages, _, reads = read_back(monkeypatch, TimeoutError("timed out"))
    assert messages == ["out"] and reads == [("a.service", (42,))]


def test_without_journald_nothing_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    messages, jobs, reads = read_back(monkeypatch, FileNotFoundError(2, "no socket"))
    assert messages == [] and reads == [] and jobs.asked == []
