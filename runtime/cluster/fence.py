"""Self-fencing: a node that may have lost its etcd lease stops its failover instances.

Peers take a failover object over once etcd expired the lost node's lease (and with
it, the ownership key). So the lost node must have stopped its instances before that
can happen, deciding from its own clock only (it cannot ask etcd): when no keep-alive
succeeded for ``Timing.detect`` seconds, it stops every local failover instance that is
up or starting, and gives the stop until the lease deadline; past it, the node runs
``split_action`` (``reboot``, ``crash``, or nothing with ``disabled``), as om3 does on a
lost quorum. The same stop runs when the daemon itself fails for good
(``omc-daemon-fence.service``, its ``OnFailure=``): a node never keeps an instance it
is no longer guarded for.

Stops run ``om <path> instance stop`` with origin ``daemon/fence`` (the same action as
any other; a daemon-origin stop does not freeze the instance): subprocesses, which
fork+exec and so are safe from the daemon's threads.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from omc.compiler.contract.node import om_path
from omc.compiler.contract.paths import Kind, ObjectPath

ORIGIN = "daemon/fence"
UNIT = "omc-daemon-fence.service"
WAIT_STEP = 0.02  # seconds between two looks at the stops in progress


def failover_instances() -> list[ObjectPath]:
    """Local svc objects with a failover topology whose instance may be running."""
    from omc.runtime.engine.observe import ACTIVE, states_via_systemctl
    from omc.runtime.objects.configs import list_objects
    from omc.runtime.objects.model import ModelError, load

    found = []
    for path in list_objects():
        if path.kind is not Kind.SVC:
            continue
        try:
            model = load(path)
        except ModelError:
            continue
        if model is None or str(model.config.get("topology", "failover")) != "failover":
            continue
        states = states_via_systemctl([r.unit for r in model.resources])
        if any(state in ACTIVE for state in states.values()):
            found.append(path)
    return found


def stop_all(
    paths: Iterable[ObjectPath],
    deadline: Callable[[], float],
    tick: Callable[[], None] = lambda: None,
) -> list[ObjectPath]:
    """Stop the instances in parallel before ``deadline()`` (monotonic, asked again while
    they stop: a lease refreshed meanwhile moves it); those not stopped by then.
    ``tick`` runs at each look (the daemon's watchdog ping: a stop may outlast
    ``WatchdogSec``)."""
    env = {**os.environ, "OSVC_ACTION_ORIGIN": ORIGIN}
    running = {
        path: subprocess.Popen(  # fork+exec: safe from a threaded daemon
            [om_path(), str(path), "instance", "stop", "--quiet"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )
        for path in paths
    }  # fmt: skip
    return wait_all(running, deadline, tick)


def wait_all(
    running: Mapping[ObjectPath, subprocess.Popen[bytes]],
    deadline: Callable[[], float],
    tick: Callable[[], None] = lambda: None,
) -> list[ObjectPath]:
    """Wait for the stops until ``deadline()`` passes; those still running or failed."""
    while any(proc.poll() is None for proc in running.values()):
        if time.monotonic() >= deadline():
            break
        tick()
        time.sleep(WAIT_STEP)
    return [path for path, proc in running.items() if proc.poll() != 0]


def split_action(action: str) -> None:
    """What a node does when it could not stop its instances in time (om3's split_action).

    ``crash`` is the kernel's sysrq crash, refused inside a container or a lab node
    (the kernel is the host's): ``reboot`` then, which there ends only the node."""
    if action == "disabled":
        return
    if action == "crash" and not _contained():
        Path("/proc/sysrq-trigger").write_text("c")
        return
    subprocess.run(["systemctl", "reboot", "--force", "--force"], check=False)


def _contained() -> bool:
    # systemd writes /run/systemd/container inside containers (and our lab nodes: container=unshare)
    return Path("/run/systemd/container").exists() or bool(os.environ.get("container"))  # noqa: SIM112


def main(argv: list[str]) -> int:
    """``om daemon fence``: stop every local failover instance (the daemon's OnFailure=)."""
    from omc.runtime.cluster.settings import SettingsError, load
    from omc.runtime.exitcodes import ExitStatus

    try:
        budget = load().timing.stop_budget
    except SettingsError:
        budget = 5.0
    paths = failover_instances()
    end = time.monotonic() + budget
    failed = stop_all(paths, lambda: end)
    for path in paths:
        print(f"{path}: {'not stopped in time' if path in failed else 'stopped'}", flush=True)
    return ExitStatus.ERROR if failed else ExitStatus.OK


UNIT_TEXT = """\
[Unit]
Description=omc: stop this node's failover instances (the node daemon failed for good)
DefaultDependencies=no

[Service]
Type=oneshot
ExecStart={om} daemon fence
"""


def unit_text(om: str) -> str:
    return UNIT_TEXT.format(om=om)
