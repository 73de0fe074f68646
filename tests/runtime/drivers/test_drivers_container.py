"""container.podman/docker: names and run argv (pure), state handling with a FAKE engine.

Real podman runs are in test_drivers_lab.py, inside a lab node.
"""

from __future__ import annotations

from omc.runtime.drivers import Status, container

from .helpers import FakeRunner, RecordingLog, answer, view


def test_default_name_follows_om3() -> None:
    """Without name: <namespace>..<name>.container.<index>."""
    assert (
        container.container_name(view("container.podman", {}, rid="container#0"))
        == "root..svc0.container.0"
    )
    assert container.container_name(view("container.podman", {"name": "web"})) == "web"


def test_podman_run_argv() -> None:
    """Keywords become run flags; podman gets the systemd cgroup manager and the resource slice."""
    res = view(
        "container.podman",
        {
            "image": "/srv/rootfs", "command": "sh -c 'sleep 100'", "hostname": "h1",
            "environment": "A=1 'B=x y'", "volume_mounts": ["/d:/d:ro"], "privileged": True,
            "run_args": "--memory 64m",
        },
        rid="container#1",
    )  # fmt: skip
    assert container.run_argv(res, engine="podman") == (
        "podman", "--cgroup-manager=systemd", "run", "--name=root..svc0.container.1", "--detach",
        "--cgroup-parent=opensvc-svc.svc0-container.1.slice", "--hostname=h1", "--privileged",
        "--volume=/d:/d:ro", "--env=A=1", "--env=B=x y", "--memory", "64m",
        "--rootfs", "/srv/rootfs", "sh", "-c", "sleep 100",
    )  # fmt: skip


def test_docker_task_argv_runs_in_foreground() -> None:
    """A container task (detach=False) runs --rm in the foreground, image by name."""
    res = view("task.docker", {"image": "busybox", "command": "true"}, rid="task#0")
    argv = container.run_argv(res, engine="docker", detach=False)
    assert argv[:4] == ("docker", "run", "--name=root..svc0.task.0", "--rm")
    assert argv[-2:] == ("busybox", "true")


def test_state_driven_start_and_stop() -> None:
    """FAKE engine: running → already up; stopped → rm then run; stop uses stop_timeout."""
    running = FakeRunner([answer(("podman", "inspect"), out="true\n")])
    log = RecordingLog()
    res = view("container.podman", {"name": "c1", "stop_timeout": 3})
    container.Podman(runner=running).start(res, log)
    assert log.messages == ["already up: container c1 is running"]
    container.Podman(runner=running).stop(res, log)
    assert running.calls[-1] == ("podman", "stop", "--time", "3", "c1")
    stopped = FakeRunner([answer(("podman", "inspect"), out="false\n")])
    container.Podman(runner=stopped).start(res, RecordingLog())
    assert stopped.calls[1] == ("podman", "rm", "c1")
    assert stopped.calls[2][:3] == ("podman", "--cgroup-manager=systemd", "run")


def test_status_absent_container_is_down() -> None:
    """FAKE engine: inspect failing means the container does not exist: down."""
    absent = FakeRunner([answer(("docker", "inspect"), rc=1, err="no such object")])
    assert (
        container.Docker(runner=absent).status(view("container.docker", {})).status is Status.DOWN
    )
