"""What `om <path> sync update` does around rsync, and at what cost (issue #9): rsync's
stdout read from a memory file at its end (not a pipe read line by line), and the
"is this instance up here" check from the driver probes, without waiting for systemctl."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omc.compiler.contract.paths import ObjectPath
from omc.runtime.drivers.base import DriverError, Probe, Status
from omc.runtime.drivers.command import capture, spooled_runner
from omc.runtime.engine.observe import Looking
from omc.runtime.engine.syncs import not_up_of
from omc.runtime.objects.model import ObjectModel, ResourceModel

LINES = "import sys\nfor i in range(20000): print(f'd{i % 100:02d}/f{i:05d}')\n"


def test_spooled_keeps_every_line_and_stderr_and_the_code() -> None:
    """20,000 lines on stdout (more than a pipe holds), stderr apart, the exit code."""
    script = LINES + "print('oops', file=sys.stderr)\nsys.exit(3)\n"
    done = capture([sys.executable, "-c", script], spool=True)
    lines = done.stdout.splitlines()
    assert len(lines) == 20000 and lines[0] == "d00/f00000" and lines[-1] == "d99/f19999"
    assert (done.stderr, done.returncode, done.ok) == ("oops\n", 3, False)
    assert done.pid > 0


def test_spooled_without_output_and_with_bytes_that_are_not_utf8() -> None:
    assert capture(["true"], spool=True).stdout == ""
    done = capture([sys.executable, "-c", "import os; os.write(1, b'a\\xffb\\n')"], spool=True)
    assert done.stdout == "a\ufffdb\n"


def test_spooled_runner_errors_are_driver_errors() -> None:
    with pytest.raises(DriverError, match="command not found: /nonexistent/rsync"):
        spooled_runner(["/nonexistent/rsync"])
    with pytest.raises(DriverError, match=r"timeout after 0\.2s"):
        spooled_runner(["sleep", "5"], timeout=0.2)
    assert spooled_runner(["cat"], input="in\n").stdout == "in\n"


def res(rid: str, driver: str, *flags: str) -> ResourceModel:
    return ResourceModel(rid=rid, driver=driver, unit=f"u-{rid}.service", flags=frozenset(flags))


def looking(probes: dict[str, Probe | None], *extra: ResourceModel) -> Looking:
    chosen = (res("ip#0", "ip.host"), res("fs#1", "fs.flag"), res("app#0", "app.simple"), *extra)
    model = ObjectModel(path=ObjectPath(name="s"), target="t", id="", source="", config={},
                        resources=chosen, units=())  # fmt: skip

    def pending() -> dict[str, str]:
        raise AssertionError("systemctl waited for")

    return Looking(model=model, chosen=chosen, probes=probes, pending=pending)


UP = Probe(status=Status.UP)
DOWN = Probe(status=Status.DOWN)
GROUPS = ("ip", "disk", "fs", "share", "container")


def test_the_probes_tell_whether_the_instance_is_up_without_the_unit_states() -> None:
    """ip and fs have probes: their states, no wait for the units; the app is not asked."""
    known = looking({"ip#0": UP, "fs#1": DOWN, "app#0": None}).known(GROUPS)
    assert known is not None and sorted(known) == ["fs#1", "ip#0"]
    assert not_up_of(known) == ["fs#1 is down"]


def test_standby_and_disabled_resources_settle_without_the_unit_states() -> None:
    extra = (res("fs#2", "fs.flag", "standby"), res("fs#3", "fs.flag", "disable"))
    known = looking({"ip#0": UP, "fs#1": UP, "app#0": None, "fs#2": UP, "fs#3": None},
                    *extra).known(GROUPS)  # fmt: skip
    assert known is not None
    assert (known["fs#2"].status, known["fs#3"].status) == (Status.STDBY_UP, Status.NA)
    assert not_up_of(known) == []


def test_a_resource_without_a_probe_needs_its_unit_state() -> None:
    """No driver probe (None): its status is its unit's, so the caller must wait."""
    assert looking({"ip#0": None, "fs#1": UP, "app#0": None}).known(GROUPS) is None


def test_the_closing_look_uses_the_probes_taken_before_and_the_unit_states() -> None:
    """finish(): the probes of the first look, settled with the unit states read since."""
    look = looking({"ip#0": UP, "fs#1": UP, "app#0": None})
    states = Looking(model=look.model, chosen=look.chosen, probes=look.probes,
                     pending=lambda: {"u-app#0.service": "failed"}).finish()  # fmt: skip
    assert {rid: s.status for rid, s in states.items()} == {
        "ip#0": Status.UP, "fs#1": Status.UP, "app#0": Status.DOWN}  # fmt: skip


def test_begin_observe_starts_systemctl_and_finish_reaps_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The unit states come from a command started at once and waited for at the end."""
    from omc.runtime.engine import observe

    started: list[list[str]] = []
    real = subprocess.Popen

    def popen(argv: list[str], **kwargs: object) -> subprocess.Popen[str]:
        started.append(argv)
        return real(["echo", "u-app#0.service loaded active running x"],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip

    monkeypatch.setattr(observe.subprocess, "Popen", popen)
    monkeypatch.setattr(observe, "_driver_probe", lambda model, r: UP if r.group != "app" else None)
    look = looking({})
    begun = observe.begin_observe(look.model, rids=frozenset({"fs#1", "app#0"}))
    assert started and started[0][:2] == ["systemctl", "list-units"]
    known = begun.known(GROUPS)
    assert known is not None and list(known) == ["fs#1"]
    states = begun.finish()
    assert {rid: s.status for rid, s in states.items()} == {"fs#1": Status.UP, "app#0": Status.UP}
