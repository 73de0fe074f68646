"""What services take from cfg/sec objects, and the root-only file a native unit reads it from."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from omc.compiler.contract.paths import parse_path
from omc.runtime.drivers import DriverError, container
from omc.runtime.drivers.command import Completed
from omc.runtime.objects import kv
from omc.runtime.objects.configs import StoreError, write_config

from .drivers.helpers import RecordingLog, view


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMC_ETC", str(tmp_path / "etc"))
    write_config(parse_path("sec/s1"), kv.new_config())
    write_config(parse_path("cfg/c1"), kv.new_config())
    kv.set_key(parse_path("sec/s1"), "password", b"hunter2", replace=False)
    kv.set_key(parse_path("sec/s1"), "TOKEN_A", b"a", replace=False)
    kv.set_key(parse_path("sec/s1"), "TOKEN_B", b"b\nc", replace=False)
    kv.set_key(parse_path("sec/s1"), "tls/key", b"k", replace=False)
    kv.set_key(parse_path("sec/s1"), "blob", b"\x00\xff", replace=False)
    kv.set_key(parse_path("cfg/c1"), "port", b"80", replace=False)
    return tmp_path / "etc"


def env(**config: object) -> dict[str, str]:
    return kv.environment("root", config)


def test_named_and_glob_references_resolve(etc: Path) -> None:
    """`VAR=obj/key` and `obj/glob` (variables named after the keys); configs, then secrets."""
    assert env(secrets_environment=["PASS=s1/password", "s1/TOKEN_*"],
               configs_environment=["PORT=c1/port", "PASS=c1/port"]) == {
        "PORT": "80", "PASS": "hunter2", "TOKEN_A": "a", "TOKEN_B": "b\nc",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"secrets_environment": ["PASS=s9/password"]},
         "secrets_environment: PASS=s9/password: object sec/s9 does not exist"),
        ({"secrets_environment": ["PASS=s1/nope"]},
         "secrets_environment: PASS=s1/nope: sec/s1 has no key 'nope'"),
        ({"configs_environment": ["c1/nope*"]},
         "configs_environment: c1/nope*: cfg/c1 has no key matching 'nope*'"),
        ({"secrets_environment": ["s1/tls"]},
         "secrets_environment: s1/tls: key 'tls/key' of sec/s1 is not a variable name"),
        ({"secrets_environment": ["B=s1/blob"]},
         "secrets_environment: key 'blob' of sec/s1 is binary"),
        ({"secrets_environment": ["garbage"]},
         "secrets_environment: 'garbage' is not VAR=<object>/<key>"),
    ],
)  # fmt: skip
def test_what_cannot_be_resolved_is_named(
    etc: Path, config: dict[str, object], message: str
) -> None:
    """The start must not go on without its secret: the error names the item and why."""
    with pytest.raises(kv.KvReferenceError) as caught:
        env(**config)
    assert str(caught.value).startswith(message)


def test_references_stay_in_the_namespace(etc: Path) -> None:
    """A service of ns1 reads ns1's objects, not root's."""
    with pytest.raises(kv.KvReferenceError, match="object ns1/sec/s1 does not exist"):
        kv.environment("ns1", {"secrets_environment": ["P=s1/password"]})


def test_the_env_file_is_root_only(tmp_path: Path) -> None:
    """0600 in a 0700 directory, whatever the umask; replaced atomically."""
    old = os.umask(0)
    try:
        file = tmp_path / "env" / "u.service.env"
        kv.write_env_file(file, {"A": "1"})
        kv.write_env_file(file, {"A": "2"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    assert file.read_text() == 'A="2"\n'
    assert sorted(p.name for p in file.parent.iterdir()) == ["u.service.env"]


def test_a_planted_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    """A symlink at the file's name is replaced: its target is never written."""
    (tmp_path / "env").mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "env" / "u.service.env").symlink_to(victim)
    kv.write_env_file(tmp_path / "env" / "u.service.env", {"A": "1"})
    assert victim.read_text() == "keep"
    assert not (tmp_path / "env" / "u.service.env").is_symlink()


@pytest.mark.parametrize("planted", ["symlink", "foreign", "writable"])
def test_a_directory_root_does_not_own_alone_is_refused(tmp_path: Path, planted: str) -> None:
    """The directory must be root's, 0700-able, not a link to somewhere else."""
    target = tmp_path / "env"
    if planted == "symlink":
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / "elsewhere")
    else:
        target.mkdir()
        if planted == "foreign":
            os.chown(target, 65534, 65534)
        else:
            target.chmod(0o777)
    with pytest.raises(StoreError, match="refusing to write secrets into"):
        kv.write_env_file(target / "u.service.env", {"A": "1"})
    if planted == "symlink":
        assert not list((tmp_path / "elsewhere").iterdir())


def test_env_file_text_escapes_what_systemd_unescapes() -> None:
    """Inside double quotes systemd unescapes \\" \\\\ \\` \\$; newlines are kept as is."""
    text = kv.env_file_text({"A": 'q"b\\t`d$e\nf%g'})
    assert text == 'A="q\\"b\\\\t\\`d\\$e\nf%g"\n'


def test_a_container_gets_keys_by_name_in_argv_and_by_value_in_the_engine_env(etc: Path) -> None:
    """`podman run --env PASS`: the value is in podman's environment, never in its argv
    (which `ps` shows to every user)."""
    calls: list[tuple[tuple[str, ...], dict[str, str]]] = []

    def engine(
        argv: Sequence[str], *, env: Mapping[str, str] | None = None, **_: object
    ) -> Completed:
        calls.append((tuple(argv), dict(env or {})))
        return Completed(argv=tuple(argv), returncode=1 if "inspect" in argv else 0)

    config = {"name": "c1", "image": "busybox", "secrets_environment": ["PASS=s1/password"]}
    res = view("container.podman", config, rid="container#0")
    container.Podman(runner=engine).start(res, RecordingLog())
    argv, env = calls[-1]
    assert argv[:3] == ("podman", "--cgroup-manager=systemd", "run") and "--env=PASS" in argv
    assert not any("hunter2" in word for word in argv)
    assert env["PASS"] == "hunter2"


def test_a_container_does_not_start_without_its_key(etc: Path) -> None:
    """The engine is never asked to run a container whose key is missing."""
    calls: list[tuple[str, ...]] = []

    def engine(argv: Sequence[str], **_: object) -> Completed:
        calls.append(tuple(argv))
        return Completed(argv=tuple(argv), returncode=1 if "inspect" in argv else 0)

    res = view("container.podman", {"secrets_environment": ["P=s1/nope"]}, rid="container#0")
    with pytest.raises(DriverError, match="sec/s1 has no key 'nope'"):
        container.Podman(runner=engine).start(res, RecordingLog())
    assert not [c for c in calls if "run" in c]
