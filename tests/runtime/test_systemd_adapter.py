"""The systemd D-Bus adapter, driven from the host against a lab node's own systemd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from omc.runtime.adapters.systemd import Systemd, SystemdError, _variant, exec_start
from omc.runtime.lab.api import Lab, Node


@pytest.fixture
def n1(lab: Lab) -> Node:
    return lab.node("n1")


@pytest.fixture
def sd(n1: Node) -> Iterator[Systemd]:
    with n1.systemd(timeout=30) as conn:
        yield conn


def _install(node: Node, sd: Systemd, name: str, service: str) -> str:
    """Write a runtime unit into the node and reload its manager."""
    unit = f"{name}.service"
    node.write_file(f"/run/systemd/system/{unit}", f"[Service]\n{service}")
    sd.daemon_reload()
    return unit


@pytest.mark.parametrize(
    ("value", "signature", "unpacked"),
    [(True, "b", True), (5, "t", 5), ("x", "s", "x"), (["a", "b"], "as", ["a", "b"]),
     (("i", -1), "i", -1)],
)  # fmt: skip
def test_property_values_are_typed_by_inference(
    value: object, signature: str, unpacked: object
) -> None:
    """bool→b, int→t, str→s, list→as; a (signature, value) pair is taken as given."""
    variant = _variant(value)  # type: ignore[arg-type]
    assert (variant.get_type_string(), variant.unpack()) == (signature, unpacked)


def test_exec_start_is_one_command_with_argv0() -> None:
    """ExecStart carries the path, the full argv and the ignore-failure flag."""
    assert exec_start(["/bin/echo", "hi"]) == (
        "a(sasb)",
        [("/bin/echo", ["/bin/echo", "hi"], False)],
    )


def test_oneshot_start_waits_for_job_and_reads_state(n1: Node, sd: Systemd, unit_name: str) -> None:
    """A oneshot's job is `done` and the unit is then inactive/dead with result success."""
    unit = _install(n1, sd, unit_name, "Type=oneshot\nExecStart=/bin/true\n")
    outcome = sd.start([unit])[unit]
    assert (outcome.result, outcome.ok) == ("done", True)
    assert (outcome.state.active_state, outcome.state.sub_state) == ("inactive", "dead")
    assert outcome.state.result == "success"


def test_failing_oneshot_reports_failed(n1: Node, sd: Systemd, unit_name: str) -> None:
    """A oneshot that exits 3 gives job result `failed` and ActiveState `failed`."""
    unit = _install(n1, sd, unit_name, "Type=oneshot\nExecStart=/bin/sh -c 'exit 3'\n")
    outcome = sd.start([unit])[unit]
    assert (outcome.result, outcome.ok) == ("failed", False)
    assert outcome.state.is_failed and outcome.state.result == "exit-code"
    sd.reset_failed(unit)
    assert sd.state(unit).active_state == "inactive"


def test_batch_start_and_stop(n1: Node, sd: Systemd, unit_name: str) -> None:
    """Several units are started together, each reported; then stopped together."""
    units = [
        _install(
            n1, sd, f"{unit_name}-{i}", "Type=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
        )
        for i in range(3)
    ]
    started = sd.start(units)
    assert sorted(started) == sorted(units)
    assert all(o.ok and o.state.is_active for o in started.values())
    stopped = sd.stop(units)
    assert all(o.state.active_state == "inactive" for o in stopped.values())


def test_active_states_and_jobs_of_one_transaction(n1: Node, sd: Systemd, unit_name: str) -> None:
    """A target's start job pulls its units in; jobs_of() finds their jobs; active_states()
    reads every state in one call (unknown units are inactive)."""
    units = [
        _install(n1, sd, f"{unit_name}-{i}", "Type=oneshot\nRemainAfterExit=yes\n"
                 "ExecStart=/bin/sleep 0.2\n")
        for i in range(2)
    ]  # fmt: skip
    target = f"{unit_name}.target"
    n1.write_file(f"/run/systemd/system/{target}", f"[Unit]\nRequires={' '.join(units)}\n")
    sd.daemon_reload()
    sd.forget(units)
    job = sd.enqueue("StartUnit", target, "replace")
    jobs = sd.jobs_of(units)
    assert sorted(jobs) == sorted(units)
    assert job not in jobs.values()
    sd.wait([job, *jobs.values()], None)
    assert sd.active_states([*units, "no-such-unit.service"]) == {
        **dict.fromkeys(units, "active"), "no-such-unit.service": "inactive"}  # fmt: skip
    sd.stop([target, *units])


def test_active_states_of_escaped_names(n1: Node, sd: Systemd, unit_name: str) -> None:
    """A name with a systemd escape (glob-unsafe backslash) is read by name, not pattern."""
    unit = _install(n1, sd, f"{unit_name}-a\\x2db", "Type=oneshot\nRemainAfterExit=yes\n"
                    "ExecStart=/bin/true\n")  # fmt: skip
    sd.start([unit])
    try:
        assert sd.active_states([unit, f"{unit_name}-other.service"]) == {
            unit: "active", f"{unit_name}-other.service": "inactive"}  # fmt: skip
    finally:
        sd.stop([unit])


def test_simple_service_has_main_pid_and_restart(n1: Node, sd: Systemd, unit_name: str) -> None:
    """A running service reports its MainPID; restart gives it a new one."""
    unit = _install(n1, sd, unit_name, "ExecStart=/bin/sleep 300\n")
    first = sd.start([unit])[unit].state
    assert first.sub_state == "running" and first.main_pid > 1
    second = sd.restart([unit])[unit].state
    assert second.main_pid not in {0, first.main_pid}
    assert sd.main_pid(unit) == second.main_pid  # one Get, the same answer
    sd.stop([unit])
    assert sd.main_pid(unit) == 0


def test_exec_pids_are_the_last_runs_of_the_commands(n1: Node, sd: Systemd, unit_name: str) -> None:
    """The pids systemd keeps of a service's commands after they ran (what an action
    matches journald's lines of a process that exited early by), per property."""
    unit = _install(n1, sd, unit_name, "Type=oneshot\nRemainAfterExit=yes\n"
                    "ExecStartPre=/bin/true\nExecStart=/bin/true\n"
                    "ExecStop=/bin/true\n")  # fmt: skip
    assert sd.exec_pids(unit) == []  # never ran
    sd.start([unit])
    try:
        pre, start = sd.exec_pids(unit, ("ExecStartPre",)), sd.exec_pids(unit, ("ExecStart",))
        assert len(pre) == len(start) == 1 and pre != start and min(pre + start) > 1
        assert sorted(sd.exec_pids(unit)) == sorted(pre + start)  # ExecStop has not run
    finally:
        sd.stop([unit])  # inactive: systemd may unload it, its pids with it (docs/runtime.md)
    assert sd.exec_pids("omct-x.socket") == [] and sd.main_pid("omct-x.socket") == 0


def test_unknown_unit_start_raises(sd: Systemd) -> None:
    """Starting a unit that does not exist raises SystemdError naming the call."""
    with pytest.raises(SystemdError, match="StartUnit failed"):
        sd.start(["omct-no-such-unit.service"])


def test_state_of_unknown_unit_is_not_found(sd: Systemd) -> None:
    """An unknown unit loads as not-found/inactive rather than raising."""
    state = sd.state("omct-never-written.service")
    assert (state.load_state, state.active_state) == ("not-found", "inactive")


def test_set_properties_on_a_slice(n1: Node, sd: Systemd, unit_name: str) -> None:
    """A runtime MemoryMax on a slice lands in the node's own memory cgroup on the host."""
    slice_ = unit_name.replace("-", "_") + ".slice"  # a dash would nest slices
    sd.start_transient(f"{unit_name}.service", ["/bin/sleep", "300"], {"Slice": slice_}, timeout=10)
    sd.set_properties(slice_, {"MemoryMax": 64 * 1024 * 1024})
    memory = next(d for d in n1.info.cgroups if "/memory/" in d)
    assert int(Path(memory, slice_, "memory.limit_in_bytes").read_text()) == 64 * 1024 * 1024
    sd.stop([f"{unit_name}.service"])


def test_start_transient_runs_argv(n1: Node, sd: Systemd, unit_name: str) -> None:
    """A transient oneshot runs its argv inside the node (it writes a file there)."""
    out = f"/run/{unit_name}.out"
    props = {"Type": "oneshot", "RemainAfterExit": True}
    outcome = sd.start_transient(
        f"{unit_name}.service", ["/bin/sh", "-c", f"hostname > {out}"], props
    )
    assert outcome.ok and outcome.state.is_active
    assert n1.read_file(out).strip() == "n1"
    sd.stop([f"{unit_name}.service"])


def test_list_units_and_system_state(n1: Node, sd: Systemd) -> None:
    """The manager lists its loaded units; its state is what `systemctl` reports."""
    assert "dbus.service" in sd.list_units(["dbus.*"])
    assert sd.system_state() == n1.system_state()
    assert sd.system_state() in {"running", "degraded"}  # others' tests may leave failures


def test_connect_to_missing_bus_is_a_clear_error() -> None:
    """A bus address that does not exist gives one SystemdError line, not a GLib trace."""
    with pytest.raises(SystemdError, match="cannot connect to unix:path=/nonexistent"):
        Systemd.system("unix:path=/nonexistent/bus")
