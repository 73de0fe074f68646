"""The keyword table: coverage of opensvc.md §2-§3, consistency, lookups and docs."""

from __future__ import annotations

from collections import Counter

import pytest
from omc.compiler.keywords import (
    DRIVERS,
    INSTEAD,
    Conv,
    Inherit,
    Support,
    canonical_type,
    driver_support,
    keyword_doc,
    lookup,
    section_keywords,
    suggest,
    table,
    words,
)

EMITTED = [
    "ip.host", "ip.netns",
    "disk.loop", "disk.vg", "disk.md", "disk.raw",
    "fs.flag", "fs.directory", "fs.ext4", "fs.xfs", "fs.btrfs", "fs.vfat", "fs.tmpfs",
    "fs.nfs", "fs.nfs4", "fs.cifs", "fs.bind", "fs.none",
    "share.nfs",
    "container.podman", "container.docker", "container.oci",
    "app.forking", "app.simple", "sync.rsync",
    "task.host", "task.podman", "task.docker", "task.oci",
]  # fmt: skip

# om3 drivers omc's runtime cannot run on its target kernel (no CNI plugins, no
# device-mapper, no zfs, no drbd, no kvm): their keywords are known, the resource rejected.
NOT_RUN = [
    "ip.cni", "ip.route", "disk.lv", "disk.drbd", "disk.zpool", "fs.zfs",
    "container.lxc", "container.kvm",
]  # fmt: skip


@pytest.mark.parametrize("driver", EMITTED)
def test_drivers_omc_runs_are_emitted(driver: str) -> None:
    """Every driver omc's runtime runs is compiled into units."""
    group, _, driver_type = driver.partition(".")
    assert driver_support(group, driver_type) is Support.EMITTED


@pytest.mark.parametrize("driver", NOT_RUN)
def test_om3_drivers_omc_does_not_run_are_parsed_not_emitted(driver: str) -> None:
    """A driver the runtime lacks is never emitted (it would fail at start), and has a hint."""
    group, _, driver_type = driver.partition(".")
    assert driver_support(group, driver_type) is Support.PARSED
    assert INSTEAD[driver]


@pytest.mark.parametrize(
    ("driver", "keywords"),
    [
        ("ip.host", "name ipname dev ipdev netmask alias check_carrier expose wait_dns gateway"),
        ("ip.netns", "netns container_rid name dev netmask gateway nsdev macaddr mode vlan_tag"),
        ("ip.cni", "network netns nsdev expose dns_name_suffix wait_dns"),
        ("ip.route", "netns to gateway dev"),
        ("disk.loop", "file size"),
        ("disk.vg", "name vgname pvs options"),
        ("disk.lv", "name vg size create_options"),
        ("disk.md", "uuid devs name level chunk spares bitmap"),
        ("disk.raw", "devs create_char_devices user group perm zone"),
        ("disk.zpool", "name vdev create_options multihost zone"),
        ("disk.drbd", "res disk addr port max_peers network template"),
        ("fs.ext4", "mnt dev mnt_opt mkfs_opt stat_timeout check_read zone configs dirperm"),
        ("fs.directory", "path user group perm configs secrets directories signal"),
        ("fs.zfs", "mnt dev size refquota quota reservation refreservation"),
        ("share.nfs", "path opts"),
        (
            "container.podman",
            "image run_image image_pull_policy name hostname dns_search cwd user command "
            "run_command entrypoint run_args detach rm init privileged interactive tty read_only "
            "netns net pidns ipcns utsns userns volume_mounts devices sysctl environment "
            "configs_environment secrets_environment registry_creds pull_timeout start_timeout "
            "stop_timeout log_outputs osvc_root_path guest_os",
        ),
        ("container.lxc", "name hostname data_dir rootfs cf template template_options rcmd"),
        ("container.kvm", "name qga qga_operational_delay virtinst rcmd"),
        (
            "app.forking",
            "script start stop check info timeout start_timeout stop_timeout check_timeout "
            "info_timeout retcodes status_log environment configs_environment "
            "secrets_environment user group cwd umask limit_as limit_cpu limit_core limit_data "
            "limit_fsize limit_memlock limit_nofile limit_nproc limit_rss limit_stack limit_vmem "
            "netns desc",
        ),
        (
            "sync.rsync",
            "schedule max_delay sync_max_delay src dst dstfs target options "
            "reset_options snap bwlimit timeout",
        ),
        (
            "task.host",
            "command stop schedule confirmation check retcodes on_error log "
            "max_parallel snooze run_timeout timeout user group cwd umask environment "
            "pre_run post_run blocking_pre_run blocking_post_run run_requires",
        ),
        ("task.podman", "image command rm netns volume_mounts schedule"),
        (
            "volume.shm",
            "name pool size access format volatile configs secrets directories "
            "user group perm dirperm signal",
        ),
    ],
)
def test_driver_keywords_from_the_reference(driver: str, keywords: str) -> None:
    """Each keyword §2 lists for a driver is known for it (aliases included)."""
    group, _, driver_type = driver.partition(".")
    missing = [k for k in words(keywords) if lookup(group, k, driver_type) is None]
    assert missing == []


COMMON = words(
    "type disable optional monitor restart restart_delay standby shared encap subset tags "
    "provision unprovision comment pg_cpus pg_mems pg_cpu_shares pg_cpu_quota pg_mem_limit "
    "pg_vmem_limit pg_mem_oom_control pg_mem_swappiness pg_blkio_weight scsireserv prkey "
    "no_preempt_abort promote_rw pre_start post_start blocking_pre_start blocking_post_stop "
    "pre_provision post_unprovision start_requires stop_requires provision_requires "
    "unprovision_requires"
)


@pytest.mark.parametrize(
    "group", ["ip", "volume", "disk", "fs", "share", "container", "app", "sync", "task"]
)
def test_common_resource_keywords_exist_in_every_group(group: str) -> None:
    """§2.1 keywords (triggers, requires, pg_*) apply to every resource group."""
    assert [k for k in COMMON if lookup(group, k) is None] == []


DEFAULTS = words(
    "nodes drpnodes drpnode encapnodes topology cluster_type flex_min flex_min_nodes flex_max "
    "flex_max_nodes flex_target flex_primary orchestrate placement priority parents children "
    "hard_affinity affinity hard_anti_affinity anti_affinity soft_affinity soft_anti_affinity "
    "stonith monitor_action pre_monitor_action env service_type app comment disable rollback id "
    "timeout start_timeout stop_timeout provision_timeout unprovision_timeout sync_timeout "
    "status_timeout status_schedule monitor_schedule resinfo_schedule comp_schedule "
    "sync_schedule run_schedule create_pg pool size access devices_from share grant cn "
    "alt_names validity constraints scale docker_data_dir autostart_node lock_timeout"
)


def test_default_keywords_from_the_reference() -> None:
    """Every §3 DEFAULT keyword is known (v1/v2 ones as legacy)."""
    assert [k for k in DEFAULTS if lookup("DEFAULT", k) is None] == []


def test_no_keyword_is_defined_twice_for_the_same_driver() -> None:
    """Within a section kind, a name or alias maps to one keyword per driver type."""
    for group, types in [(g, list(t) or [None]) for g, t in DRIVERS.items()]:
        for driver_type in types:
            names = Counter(n for k in section_keywords(group, driver_type) for n in k.names)
            assert [n for n, c in names.items() if c > 1] == [], (group, driver_type)


def test_every_keyword_is_documented_and_consistent() -> None:
    """Docs are non-empty; head/leaf modes fit their section; candidates fit defaults."""
    for keyword in table():
        assert keyword.doc, keyword
        if keyword.candidates and keyword.default and "{" not in keyword.default:
            assert keyword.default in keyword.candidates, keyword
        if keyword.section == "DEFAULT":
            assert keyword.inherit in (Inherit.HEAD, Inherit.LEAF), keyword
        if keyword.default_option:
            assert lookup("DEFAULT", keyword.default_option) is not None, keyword
        if keyword.conv is Conv.BOOL and keyword.default is not None:
            assert keyword.default in ("true", "false"), keyword


@pytest.mark.parametrize(
    ("section", "typo", "driver_type", "expected"),
    [
        ("ip", "ipnme", "host", "ipname"),
        ("DEFAULT", "nodez", None, "nodes"),
        ("DEFAULT", "orchestrat", None, "orchestrate"),
        ("fs", "mnt_opts", "ext4", "mnt_opt"),
        ("app", "chek", "forking", "check"),
        ("app", "zzzzzz", "forking", None),
    ],
)
def test_did_you_mean(section: str, typo: str, driver_type: str | None, expected: str) -> None:
    """The closest keyword is suggested, or nothing when nothing is close."""
    assert suggest(section, typo, driver_type) == expected


@pytest.mark.parametrize(
    ("group", "written", "canonical"),
    [
        ("ip", "", "host"),
        ("ip", "docker", "netns"),
        ("disk", "lvm", "vg"),
        ("app", "", "forking"),
        ("task", "", "host"),
        ("sync", "", "rsync"),
        ("container", "", "oci"),
        ("fs", "", ""),
    ],
)
def test_canonical_types(group: str, written: str, canonical: str) -> None:
    """Defaults per group and om3's registered aliases."""
    assert canonical_type(group, written) == canonical


@pytest.mark.parametrize("driver", [None, "DEFAULT", "ip", "ip.host", "fs.ext4", "app.simple"])
def test_keyword_doc_lists_keywords(driver: str | None) -> None:
    """``omc keywords [DRIVER]`` text shows names, docs and flags."""
    text = keyword_doc(driver)
    assert "disable" in text or "nodes" in text
    if driver == "ip.host":
        assert "aliases=ipname" in text and "[ip] type = host" in text
        assert "to " not in text.split("\n", 1)[1][:5]


def test_keyword_doc_says_which_types_omc_runs() -> None:
    """``omc keywords fs`` sorts the types: run by omc, om3 ones it rejects, v1/v2 ones."""
    lines = keyword_doc("fs").splitlines()
    assert lines[1].startswith("  types omc runs: flag directory ext2 ")
    assert lines[2] == "  om3 types omc's runtime does not run (rejected): zfs"
    assert lines[3] == "  v1/v2 types om3 removed (rejected): docker"


def test_keyword_doc_of_a_driver_omc_rejects_says_so_and_what_to_use() -> None:
    """``omc keywords ip.cni`` leads with the verdict and the alternative, then the keywords."""
    lines = keyword_doc("ip.cni").splitlines()
    assert lines[1] == "  not supported by omc's runtime: ip.cni is rejected"
    assert lines[2] == f"  instead: {INSTEAD['ip.cni']}"
    legacy = keyword_doc("container.hpvm").splitlines()
    assert legacy[1] == "  v1/v2 only; om3 removed it: container.hpvm is rejected"


@pytest.mark.parametrize("driver", ["nosuch", "ip.nosuch"])
def test_keyword_doc_unknown_driver(driver: str) -> None:
    """An unknown driver is a KeyError naming it."""
    with pytest.raises(KeyError, match="unknown"):
        keyword_doc(driver)


def test_per_section_tables_are_the_full_table_split_by_section() -> None:
    """Building one section kind's keywords on demand gives that kind's slice of the
    whole table, in table order (the cold path builds only the groups it needs)."""
    from omc.compiler import keywords

    by_section: dict[str, list[object]] = {}
    for k in keywords.table():
        by_section.setdefault(k.section, []).append(k)
    assert len(by_section) > 10
    for section, expected in by_section.items():
        assert keywords._section_table(section) == tuple(expected), section
