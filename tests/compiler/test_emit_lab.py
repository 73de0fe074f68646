"""In a real systemd node: the emitted graph starts and stops in OpenSVC's order.

Apps append ``start <rid>`` / ``stop <rid>`` to a journal file; starting and
stopping the object's target with plain systemctl must give om3's order, stop
at the first failing resource, and leave a standby resource up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from omc.compiler import ir
from omc.compiler.contract import names
from omc.runtime.lab.api import Lab, Node

SPAN = ir.SourceSpan(file="/etc/opensvc/order.conf", line=1, column=1)


def _app(rid: str, log: str, *, fail: bool = False, **kw: object) -> ir.AppResource:
    start = "exit 1" if fail else f"echo start {rid} >> {log}"
    return ir.AppResource(
        rid=rid,
        group=ir.Group.APP,
        driver="app.forking",
        span=SPAN,
        start=("/bin/sh", "-c", start),
        stop=("/bin/sh", "-c", f"echo stop {rid} >> {log}"),
        **kw,  # type: ignore[arg-type]
    )


class Installed:
    """Units of one service written into a node's /run/systemd/system."""

    def __init__(self, node: Node, service: ir.Service) -> None:
        from omc.compiler.emit import emit

        self.node = node
        self.service = service
        self.units = emit(service, om="/bin/true")
        for name, text in self.units.items():
            node.write_file(f"/run/systemd/system/{name}", text)
        node.run(["systemctl", "daemon-reload"])

    @property
    def target(self) -> str:
        return names.target(self.service.path)

    def remove(self) -> None:
        self.node.run(["systemctl", "stop", *self.units], check=False)
        self.node.run(["systemctl", "reset-failed", *self.units], check=False)
        for name in self.units:
            self.node.path(f"/run/systemd/system/{name}").unlink(missing_ok=True)
        self.node.run(["systemctl", "daemon-reload"], check=False)


@pytest.fixture
def install(lab: Lab) -> Iterator[list[Installed]]:
    done: list[Installed] = []
    yield done
    for item in done:
        item.remove()


def _wait_stopped(node: Node, units: list[str]) -> None:
    """`systemctl stop <target>` returns when the target's own job is done; the resources'
    stop jobs (PartOf) run after it (reverse order), so wait for them to finish."""
    for _ in range(300):
        listing = node.run(["systemctl", "list-jobs", "--no-legend"], check=False).stdout
        jobs = [line for line in listing.splitlines() if any(u in line for u in units)]
        if not jobs:
            return
        time.sleep(0.1)
    raise AssertionError(f"stop jobs still queued: {jobs}")


def _log_lines(node: Node, log: str) -> list[str]:
    path = node.path(log)
    return path.read_text().splitlines() if path.exists() else []


def test_start_and_stop_follow_opensvc_order(
    lab: Lab, unit_name: str, install: list[Installed]
) -> None:
    """Sequential rids in string order, a parallel subset in between, stop reversed."""
    node = lab.node("n1")
    log = f"/run/{unit_name}.log"
    service = ir.Service(
        path=ir.ObjectPath(name=unit_name),
        id="x",
        source="/etc/opensvc/order.conf",
        node="n1",
        resources=(
            _app("app#2", log),
            _app("app#10", log),
            _app("app#p1", log, subset="par"),
            _app("app#p2", log, subset="par"),
            _app("app#z", log, subset="zlast"),
        ),
        subsets=(ir.Subset(group=ir.Group.APP, name="par", parallel=True),),
    )
    item = Installed(node, service)
    install.append(item)
    node.run(["systemctl", "start", item.target])
    started = _log_lines(node, log)
    assert started[:2] == ["start app#10", "start app#2"]
    assert sorted(started[2:4]) == ["start app#p1", "start app#p2"]
    assert started[4:] == ["start app#z"]
    node.run(["systemctl", "stop", item.target])
    _wait_stopped(node, list(item.units))
    stopped = _log_lines(node, log)[5:]
    assert stopped[0] == "stop app#z"
    assert sorted(stopped[1:3]) == ["stop app#p1", "stop app#p2"]
    assert stopped[3:] == ["stop app#2", "stop app#10"]


def test_start_stops_at_the_first_failure_and_standby_stays_up(
    lab: Lab, unit_name: str, install: list[Installed]
) -> None:
    """A failing non-optional resource blocks the rest; optional ones do not."""
    node = lab.node("n1")
    log = f"/run/{unit_name}.log"
    path = ir.ObjectPath(name=unit_name)
    service = ir.Service(
        path=path,
        id="x",
        source="/etc/opensvc/order.conf",
        node="n1",
        resources=(
            _app("app#1", log, standby=True),
            _app("app#2", log, fail=True, optional=True),
            _app("app#3", log),
            _app("app#4", log, fail=True),
            _app("app#5", log),
        ),
    )
    item = Installed(node, service)
    install.append(item)
    proc = node.run(["systemctl", "start", item.target], check=False)
    assert proc.returncode != 0
    assert _log_lines(node, log) == ["start app#1", "start app#3"]
    node.run(["systemctl", "stop", item.target], check=False)
    standby = names.resource_unit(path, "app#1", "service")
    state = node.run(["systemctl", "is-active", standby], check=False).stdout.strip()
    assert state == "active"
