"""Emission: the IR of a service becomes the documented set of units."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from omc.compiler import ir
from omc.compiler.contract.units import without_stream
from omc.compiler.emit import EmitError, emit

OM = str(Path(sys.executable).with_name("om"))
SPAN = ir.SourceSpan(file="/etc/opensvc/svc0.conf", line=3, column=1)
SVC0 = ir.ObjectPath(name="svc0")
ID = "6c1e6e3e-6f0b-4a0e-9a51-7c9d1f2a0001"


def flag(rid: str = "fs#1", **kw: Any) -> ir.FsResource:
    return ir.FsResource(
        rid=rid, group=ir.Group.FS, driver="fs.flag", span=SPAN, fs_type="flag", **kw
    )


def app(rid: str = "app#0", **kw: Any) -> ir.AppResource:
    kw.setdefault("start", ("touch", "/tmp/svc0.root.svc.lab"))
    kw.setdefault("driver", "app.forking")
    return ir.AppResource(rid=rid, group=ir.Group.APP, span=SPAN, **kw)


def ip(rid: str = "ip#0", **kw: Any) -> ir.IpResource:
    kw.setdefault("driver", "ip.host")
    return ir.IpResource(rid=rid, group=ir.Group.IP, span=SPAN, **kw)


def service(*resources: ir.Resource, **kw: Any) -> ir.Service:
    return ir.Service(
        path=kw.pop("path", SVC0),
        id=ID,
        source="/etc/opensvc/svc0.conf",
        node="n1",
        resources=resources,
        **kw,
    )


def lines(text: str, key: str) -> list[str]:
    """Every value of `key=` in a unit text."""
    return [ln.split("=", 1)[1] for ln in text.splitlines() if ln.startswith(f"{key}=")]


SEED = service(
    flag(config=(("type", "flag"),)),
    app(stop=("rm", "-f", "/tmp/svc0.root.svc.lab"), config=(("start", "touch …"),)),
)


def test_seed_svc0_units() -> None:
    """The seed's svc0 gives a target, the slice tree, a flag oneshot and an app unit."""
    units = emit(SEED, om="/usr/bin/om")
    assert list(units) == [
        "opensvc-svc.svc0.target",
        "opensvc.slice",
        "opensvc-svc.svc0.slice",
        "opensvc-svc.svc0-fs.1.service",
        "opensvc-svc.svc0-fs.1.slice",
        "opensvc-svc.svc0-app.0.service",
        "opensvc-svc.svc0-app.0.slice",
    ]
    fs = units["opensvc-svc.svc0-fs.1.service"]
    assert lines(fs, "ExecStart") == ["/usr/bin/om svc0 driver start --rid fs#1"]
    assert lines(fs, "ExecStop") == ["/usr/bin/om svc0 driver stop --rid fs#1"]
    assert lines(fs, "Type") == ["oneshot"]
    assert lines(fs, "RemainAfterExit") == ["yes"]
    assert lines(fs, "X-OpenSVC-Config") == ['{"type":"flag"}']
    application = units["opensvc-svc.svc0-app.0.service"]
    assert lines(application, "ExecStart") == [
        "/usr/bin/systemd-cat --identifier=touch --priority=info --stderr-priority=warning "
        "--level-prefix=false -- touch /tmp/svc0.root.svc.lab"
    ]
    assert lines(application, "Slice") == ["opensvc-svc.svc0-app.0.slice"]
    assert lines(application, "After") == ["opensvc-svc.svc0-fs.1.service"]
    assert lines(application, "Requires") == ["opensvc-svc.svc0-fs.1.service"]
    target = units["opensvc-svc.svc0.target"]
    assert lines(target, "Requires") == [
        "opensvc-svc.svc0-fs.1.service",
        "opensvc-svc.svc0-app.0.service",
    ]
    assert all("[Install]" not in text for text in units.values())


def test_every_unit_carries_metadata() -> None:
    """SourcePath= and X-OpenSVC-Path= are on every unit but the shared root slice."""
    for name, text in emit(SEED, om=OM).items():
        if name == "opensvc.slice":
            assert "SourcePath" not in text
            continue
        assert lines(text, "SourcePath") == ["/etc/opensvc/svc0.conf"], name
        assert lines(text, "X-OpenSVC-Path") == ["svc0"], name


def test_output_is_deterministic() -> None:
    """Same service, same bytes, whatever the order resources were declared in."""
    resources = [flag("fs#2"), flag("fs#10"), app("app#1"), app("app#0"), ip()]
    first = emit(service(*resources), om=OM)
    random.Random(4).shuffle(resources)
    assert emit(service(*resources), om=OM) == first
    assert emit(service(*resources), om=OM) == first


@pytest.mark.parametrize(
    ("resources", "chain"),
    [
        ((app(), flag(), ip()), ["ip#0", "fs#1", "app#0"]),
        ((flag("fs#2"), flag("fs#10")), ["fs#10", "fs#2"]),
        (
            (app("app#b", sequence=20), app("app#a"), app("app#c", sequence=10)),
            ["app#c", "app#b", "app#a"],
        ),
        ((flag("fs#1"), flag("fs#2", disable=True), app()), ["fs#1", "app#0"]),
        ((flag("fs#1"), flag("fs#2", encap=True), app()), ["fs#1", "app#0"]),
    ],
)
def test_sequential_start_order(resources: tuple[ir.Resource, ...], chain: list[str]) -> None:
    """Each resource starts after the previous active one (om3 order)."""
    units = emit(service(*resources), om=OM)

    def unit(rid: str) -> str:
        group, index = rid.split("#")
        return f"opensvc-svc.svc0-{group}.{index}.service"

    for before, after in itertools.pairwise(chain):
        assert lines(units[unit(after)], "After") == [unit(before)]
    assert lines(units[unit(chain[0])], "After") == []


def test_parallel_subset() -> None:
    """Members of a parallel subset start together, after the previous set, before the next."""
    svc = service(
        app("app#1"),
        app("app#3", subset="workers"),
        app("app#4", subset="workers"),
        ir.TaskResource(
            rid="task#t",
            group=ir.Group.TASK,
            driver="task.host",
            span=SPAN,
            schedule=ir.Schedule(
                raw="@1h", rules=(ir.ScheduleRule(timeranges=(ir.TimeRange(interval=3600),)),)
            ),
        ),
        subsets=(ir.Subset(group=ir.Group.APP, name="workers", parallel=True),),
    )
    units = emit(svc, om=OM)
    for member in ("app.3", "app.4"):
        text = units[f"opensvc-svc.svc0-{member}.service"]
        assert lines(text, "After") == ["opensvc-svc.svc0-app.1.service"]
        assert lines(text, "Slice") == [f"opensvc-svc.svc0-subset.workers-{member}.slice"]
    timer = units["opensvc-svc.svc0-task.t.timer"]
    assert lines(timer, "After") == [
        "opensvc-svc.svc0-app.3.service",
        "opensvc-svc.svc0-app.4.service",
    ]
    assert "opensvc-svc.svc0-subset.workers.slice" in units


def test_optional_standby_and_disabled() -> None:
    """Optional → Wants=, standby → not PartOf the target, disabled → not pulled in."""
    svc = service(ip(optional=True), flag(standby=True), app(disable=True))
    units = emit(svc, om=OM)
    target = units["opensvc-svc.svc0.target"]
    assert lines(target, "Wants") == ["opensvc-svc.svc0-ip.0.service"]
    assert lines(target, "Requires") == ["opensvc-svc.svc0-fs.1.service"]
    fs = units["opensvc-svc.svc0-fs.1.service"]
    assert lines(fs, "PartOf") == []
    assert lines(fs, "Wants") == ["opensvc-svc.svc0-ip.0.service"]
    assert lines(fs, "X-OpenSVC-Flags") == ["standby"]
    disabled = units["opensvc-svc.svc0-app.0.service"]
    assert lines(disabled, "X-OpenSVC-Flags") == ["disable"]
    assert lines(disabled, "After") == lines(disabled, "PartOf") == []


@pytest.mark.parametrize(
    ("fs_type", "dev", "mnt_opt", "what", "options"),
    [
        ("ext4", "/srv/img/data.img", None, "/srv/img/data.img", ["loop"]),
        ("ext4", "/dev/sdb1", "noatime", "/dev/sdb1", ["noatime"]),
        ("bind", "/srv/src", None, "/srv/src", ["bind"]),
        ("tmpfs", None, "size=10m", "tmpfs", ["size=10m"]),
    ],
)
def test_mount_units(
    fs_type: str, dev: str | None, mnt_opt: str | None, what: str, options: list[str]
) -> None:
    """Mountable fs become .mount units named from the mount point."""
    res = ir.FsResource(
        rid="fs#2",
        group=ir.Group.FS,
        driver=f"fs.{fs_type}",
        span=SPAN,
        fs_type=fs_type,
        is_mountable=True,
        dev=dev,
        mnt="/srv/my-data/",
        mnt_opt=mnt_opt,
    )
    text = emit(service(res), om=OM)["srv-my\\x2ddata.mount"]
    assert lines(text, "What") == [what]
    assert lines(text, "Where") == ["/srv/my-data"]
    assert lines(text, "Options") == options
    assert lines(text, "Slice") == ["opensvc-svc.svc0-fs.2.slice"]


def test_app_settings() -> None:
    """App keywords map onto service settings; OPENSVC_* wins over user environment."""
    res = app(
        driver="app.simple",
        kind=ir.AppKind.SIMPLE,
        start=("/usr/bin/sleep", "100"),
        environment=(("FOO", "a b"), ("OPENSVC_RID", "spoof")),
        user="nobody",
        user_group="nogroup",
        cwd="/tmp",
        umask=0o22,
        limits=(("LimitNOFILE", 4096),),
        restart=2,
        restart_delay=1.5,
        start_timeout=30.0,
    )
    text = emit(service(res), om=OM)["opensvc-svc.svc0-app.0.service"]
    assert lines(text, "Type") == ["exec"]
    assert lines(text, "RemainAfterExit") == []
    assert lines(text, "Environment")[0] == '"FOO=a b" OPENSVC_RID=spoof'
    assert "OPENSVC_RID=app#0" in lines(text, "Environment")[1]
    assert lines(text, "User") == ["nobody"]
    assert lines(text, "Group") == ["nogroup"]
    assert lines(text, "WorkingDirectory") == ["/tmp"]
    assert lines(text, "UMask") == ["0022"]
    assert lines(text, "LimitNOFILE") == ["4096"]
    assert lines(text, "Restart") == ["on-failure"]
    assert lines(text, "RestartSec") == ["1500ms"]
    assert lines(text, "StartLimitBurst") == ["3"]
    assert lines(text, "TimeoutStartSec") == ["30s"]


def test_forking_app_without_start_runs_true() -> None:
    """A forking app with no start command stays up via /bin/true."""
    text = emit(service(app(start=None)), om=OM)["opensvc-svc.svc0-app.0.service"]
    assert [without_stream(x) for x in lines(text, "ExecStart")] == ["/bin/true"]
    assert lines(text, "Type") == ["forking"]
    assert lines(text, "RemainAfterExit") == ["yes"]


def test_pg_caps_become_slice_properties() -> None:
    """pg_* keywords land on the slice of their level."""
    pg = ir.ProcessGroup(cpu_quota="50%", memory_max=400 * 2**20, allowed_cpus="1-2")
    units = emit(service(app(pg=ir.ProcessGroup(cpu_weight=200)), pg=pg), om=OM)
    obj = units["opensvc-svc.svc0.slice"]
    assert lines(obj, "CPUQuota") == ["50%"]
    assert lines(obj, "MemoryMax") == [str(400 * 2**20)]
    assert lines(obj, "AllowedCPUs") == ["1-2"]
    assert lines(units["opensvc-svc.svc0-app.0.slice"], "CPUWeight") == ["200"]


def test_unscheduled_task_has_no_timer() -> None:
    """A task without schedule is a service only, not pulled in by the target."""
    task = ir.TaskResource(rid="task#1", group=ir.Group.TASK, driver="task.host", span=SPAN)
    units = emit(service(task), om="/usr/bin/om")
    assert "opensvc-svc.svc0-task.1.timer" not in units
    text = units["opensvc-svc.svc0-task.1.service"]
    assert lines(text, "ExecStart") == ["/usr/bin/om svc0 driver run --rid task#1"]
    assert lines(units["opensvc-svc.svc0.target"], "Wants") == []


def test_unexpressible_command_is_an_error_with_a_span() -> None:
    """A relative program path cannot be run by systemd: EmitError points at the section."""
    with pytest.raises(EmitError) as info:
        emit(service(app(start=("myvol/bin/start",))), om=OM)
    assert info.value.span == SPAN
    assert info.value.rid == "app#0"
    assert "absolute path or a bare name" in str(info.value)


def _kitchen_sink() -> ir.Service:
    schedule = ir.Schedule(
        raw="~04:00-06:00 mon-fri",
        rules=(
            ir.ScheduleRule(
                timeranges=(ir.TimeRange(begin=14400, end=21600, random=True),),
                days=tuple(ir.DaySpec(weekday=d) for d in range(1, 6)),
            ),
        ),
    )
    return service(
        ip(ipname="10.0.0.1", dev="eth0"),
        ir.DiskResource(
            rid="disk#0",
            group=ir.Group.DISK,
            driver="disk.loop",
            span=SPAN,
            file="/srv/img/data.img",
        ),
        flag(),
        ir.FsResource(
            rid="fs#2",
            group=ir.Group.FS,
            driver="fs.ext4",
            span=SPAN,
            fs_type="ext4",
            is_mountable=True,
            dev="/srv/img/data.img",
            mnt="/srv/d",
        ),
        ir.ContainerResource(
            rid="container#0",
            group=ir.Group.CONTAINER,
            driver="container.podman",
            span=SPAN,
            image="pause",
        ),
        app("app#0", environment=(("X", "$HOME %n"),), restart=1),
        app(
            "app#1",
            driver="app.simple",
            kind=ir.AppKind.SIMPLE,
            subset="w",
            start=("/bin/sleep", "10"),
        ),
        app("app#2", subset="w", pg=ir.ProcessGroup(cpu_quota="20%")),
        ir.SyncResource(
            rid="sync#0", group=ir.Group.SYNC, driver="sync.rsync", span=SPAN, schedule=schedule
        ),
        ir.TaskResource(
            rid="task#0",
            group=ir.Group.TASK,
            driver="task.host",
            span=SPAN,
            schedule=ir.Schedule(
                raw="@10m", rules=(ir.ScheduleRule(timeranges=(ir.TimeRange(interval=600),)),)
            ),
        ),
        subsets=(
            ir.Subset(
                group=ir.Group.APP, name="w", parallel=True, pg=ir.ProcessGroup(memory_max=2**30)
            ),
        ),
        pg=ir.ProcessGroup(cpu_quota="50%", io_weight=100),
        path=ir.ObjectPath(namespace="ns1", name="web-1"),
    )


def test_systemd_analyze_verify_accepts_every_unit_kind(tmp_path: Path) -> None:
    """systemd-analyze verify reports no error and no warning on any emitted unit kind."""
    units = emit(_kitchen_sink(), om=OM)
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    proc = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            "--recursive-errors=yes",
            *(str(tmp_path / n) for n in units),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")
    kinds = {name.rsplit(".", 1)[1] for name in units}
    assert kinds == {"target", "slice", "service", "mount", "timer"}


def test_linked_ip_starts_right_after_its_container() -> None:
    """An ip.netns pointing at a container starts after it, not in the ip group."""
    container = ir.ContainerResource(
        rid="container#0", group=ir.Group.CONTAINER, driver="container.podman", span=SPAN
    )
    linked = ip("ip#1", driver="ip.netns", netns="container#0")
    units = emit(service(ip("ip#0"), container, linked, app()), om=OM)
    stem = "opensvc-svc.svc0"
    assert lines(units[f"{stem}-container.0.service"], "After") == [f"{stem}-ip.0.service"]
    assert lines(units[f"{stem}-ip.1.service"], "After") == [f"{stem}-container.0.service"]
    assert lines(units[f"{stem}-app.0.service"], "After") == [f"{stem}-ip.1.service"]


def test_schedule_notes_are_comments_in_the_timer() -> None:
    """What a timer cannot express is said in the timer, as comments."""
    task = ir.TaskResource(
        rid="task#1",
        group=ir.Group.TASK,
        driver="task.host",
        span=SPAN,
        schedule=ir.Schedule(
            raw="01:00 * 1-10",
            rules=(
                ir.ScheduleRule(timeranges=(ir.TimeRange(begin=3600, end=3600),), weeks=(1, 2)),
            ),
        ),
    )
    timer = emit(service(task), om=OM)["opensvc-svc.svc0-task.1.timer"]
    assert "# note: ISO week filter not expressible in a timer: runs every week" in timer
    assert lines(timer, "OnCalendar") == ["*-*-* 01:00:00"]
    assert lines(timer, "Unit") == ["opensvc-svc.svc0-task.1.service"]


@pytest.mark.parametrize(
    ("res_timeout", "object_timeout", "config", "expected"),
    [
        (30.0, 60.0, (("timeout", 120.0),), "30s"),
        (None, 60.0, (("timeout", 120.0),), "60s"),
        (None, None, (("timeout", 120.0),), "120s"),
        (None, None, (), "3600s"),
        (0.25, None, (), "250ms"),
    ],
)
def test_timeouts_fall_back_like_om3(
    res_timeout: float | None,
    object_timeout: float | None,
    config: tuple[tuple[str, object], ...],
    expected: str,
) -> None:
    """Resource timeout, else the object's start_timeout, else DEFAULT.timeout, else 1h."""
    svc = service(flag(start_timeout=res_timeout), start_timeout=object_timeout, config=config)
    text = emit(svc, om=OM)["opensvc-svc.svc0-fs.1.service"]
    assert lines(text, "TimeoutStartSec") == [expected]


def test_config_json_is_total() -> None:
    """Any config value becomes JSON: sets sorted, enums by value, infinities as text."""
    res = flag(config=(("a", frozenset({"b", "a"})), ("k", ir.Group.FS), ("t", float("inf"))))
    text = emit(service(res), om=OM)["opensvc-svc.svc0-fs.1.service"]
    assert lines(text, "X-OpenSVC-Config") == ['{"a":["a","b"],"k":"fs","t":"inf"}']


def _disk(rid: str, driver: str, **kw: Any) -> ir.DiskResource:
    return ir.DiskResource(rid=rid, group=ir.Group.DISK, driver=driver, span=SPAN, **kw)


def _ext4_on(dev: str) -> ir.FsResource:
    return ir.FsResource(
        rid="fs#0",
        group=ir.Group.FS,
        driver="fs.ext4",
        span=SPAN,
        fs_type="ext4",
        is_mountable=True,
        dev=dev,
        mnt="/srv/data",
    )


LOOP0 = _disk("disk#0", "disk.loop", file="/srv/img/disk0.img")
RAW2 = _disk("disk#1", "disk.raw", devs=("/dev/sdb", "/dev/sdc"))
PUBLISHED = "/run/opensvc/dev/root/svc/svc0"


@pytest.mark.parametrize(
    ("disks", "dev", "what"),
    [
        ((LOOP0,), "{disk#0.exposed_devs[0]}", f"{PUBLISHED}/disk.0.0"),
        ((LOOP0,), "{disk#0.exposed_devs}", f"{PUBLISHED}/disk.0.0"),
        ((LOOP0, RAW2), "{disk#1.exposed_devs[1]}", f"{PUBLISHED}/disk.1.1"),
        ((LOOP0, RAW2), "{disk#1.exposed_devs}", "{disk#1.exposed_devs}"),
        ((_disk("disk#0", "disk.vg", disk_name="vg0"),), "{disk#0.exposed_devs[0]}", None),
        ((LOOP0,), "{disk#9.exposed_devs[0]}", None),
    ],
)
def test_mount_of_an_exposed_disk_device(
    disks: tuple[ir.DiskResource, ...], dev: str, what: str | None
) -> None:
    """A published disk device becomes its stable path in What=; other references stay."""
    text = emit(service(*disks, _ext4_on(dev)), om=OM)["srv-data.mount"]
    assert lines(text, "What") == [what or dev]
    assert lines(text, "Options") == []


def test_mount_of_an_exposed_device_requires_its_disk() -> None:
    """The mount is ordered after, and requires, the disk that publishes its device."""
    disk_unit = "opensvc-svc.svc0-disk.0.service"
    fs = _ext4_on("{disk#0.exposed_devs[0]}")
    for resources in ((LOOP0, fs), (LOOP0, RAW2, fs)):
        text = emit(service(*resources), om=OM)["srv-data.mount"]
        assert lines(text, "After").count(disk_unit) == 1
        assert lines(text, "Requires").count(disk_unit) == 1


def test_mount_of_a_missing_exposed_device_is_an_error() -> None:
    """An index past the devices a disk exposes is an emit error on the fs."""
    with pytest.raises(EmitError, match="exposes 1 device"):
        emit(service(LOOP0, _ext4_on("{disk#0.exposed_devs[1]}")), om=OM)
