"""Test doubles for driver tests: a recording log and a scripted command runner.

Fakes stand in for the system only in unit tests of pure logic (argv building,
parsing, decisions); every driver also has a real test where this host or a
lab node allows it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from omc.runtime.drivers import ResourceView
from omc.runtime.drivers.command import Completed


@dataclass
class RecordingLog:
    """Collects ``(level, message)`` pairs, as the ActionLog protocol is called."""

    records: list[tuple[str, str]] = field(default_factory=list)

    def _add(self, level: str, msg: str) -> None:
        self.records.append((level, msg))

    def info(self, msg: str, *, rid: str | None = None, **fields: object) -> None:
        self._add("info", msg)

    def warning(self, msg: str, *, rid: str | None = None, **fields: object) -> None:
        self._add("warning", msg)

    def error(self, msg: str, *, rid: str | None = None, **fields: object) -> None:
        self._add("error", msg)

    def debug(self, msg: str, *, rid: str | None = None, **fields: object) -> None:
        self._add("debug", msg)

    @property
    def messages(self) -> list[str]:
        return [m for _, m in self.records]


Responder = Callable[[tuple[str, ...]], Completed | None]


@dataclass
class FakeRunner:
    """Records argv lists; answers from ``script`` (first responder returning a result)."""

    script: list[Responder] = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    inputs: list[str | None] = field(default_factory=list)

    def __call__(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Completed:
        key = tuple(argv)
        self.calls.append(key)
        self.inputs.append(input)
        for responder in self.script:
            done = responder(key)
            if done is not None:
                return done
        return Completed(argv=key, returncode=0)


def answer(prefix: tuple[str, ...], *, rc: int = 0, out: str = "", err: str = "") -> Responder:
    """A responder for every argv starting with ``prefix``."""

    def respond(argv: tuple[str, ...]) -> Completed | None:
        if argv[: len(prefix)] == prefix:
            return Completed(argv=argv, returncode=rc, stdout=out, stderr=err)
        return None

    return respond


def view(
    driver: str,
    config: Mapping[str, object],
    *,
    rid: str = "r#0",
    path: str = "svc0",
    flags: frozenset[str] = frozenset(),
    tags: frozenset[str] = frozenset(),
    object_id: str = "",
) -> ResourceView:
    """A ResourceView as the unit reader would build it."""
    return ResourceView(
        path=path,
        rid=rid,
        driver=driver,
        config=dict(config),
        flags=flags,
        tags=tags,
        unit=f"test-{rid}.service",
        object_id=object_id,
    )
