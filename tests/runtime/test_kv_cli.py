"""`om` on cfg, sec and usr objects (issue #10 item 10): create, add, change, keys, decode,
remove, delete, as om3 spells them. Black box: the real `om` in a child process, over a
scratch config directory (key commands need no systemd)."""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.trees import scratch_env

BIN = Path(sys.executable).parent
Om = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def om(tmp_path: Path) -> Om:
    env = scratch_env(tmp_path)

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([BIN / "om", *args], cwd=tmp_path, env=env, input=stdin,
                              capture_output=True, check=False, timeout=120)  # fmt: skip

    return run


def ok(proc: subprocess.CompletedProcess[bytes]) -> bytes:
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def test_a_secret_is_created_empty_and_keys_go_in_and_out(om: Om, tmp_path: Path) -> None:
    """create without --config; add --value, add --from FILE and stdin; keys; decode."""
    ok(om("sec/s1", "create"))
    ok(om("sec/s1", "add", "--key", "password", "--value", 's3cr"et $x'))
    (tmp_path / "cert.pem").write_bytes(b"line1\nline2\n\x00\xff")
    ok(om("sec/s1", "add", "--key", "tls/cert.pem", "--from", "cert.pem"))
    ok(om("sec/s1", "add", "--key", "piped", "--from", "-", stdin=b"from stdin"))
    assert ok(om("sec/s1", "keys")) == b"password\ntls/cert.pem\npiped\n"
    assert ok(om("sec/s1", "keys", "--match", "tls/*")) == b"tls/cert.pem\n"
    assert ok(om("sec/s1", "decode", "--key", "password")) == b's3cr"et $x'
    assert ok(om("sec/s1", "decode", "--key", "tls/cert.pem")) == b"line1\nline2\n\x00\xff"
    assert ok(om("sec/s1", "decode", "--key", "piped")) == b"from stdin"


def test_a_secret_is_root_only_and_not_in_clear(om: Om, tmp_path: Path) -> None:
    """The sec config is 0600 and holds base64, never the value as typed (no encryption:
    docs/units.md, "Secrets")."""
    ok(om("sec/s1", "create"))
    ok(om("sec/s1", "add", "--key", "password", "--value", "hunter2"))
    conf = tmp_path / "etc" / "sec" / "s1.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    text = conf.read_text()
    assert "hunter2" not in text and "password = base64:aHVudGVyMg==" in text


def test_change_replaces_add_refuses_remove_deletes(om: Om) -> None:
    """add of an existing key fails (om3), change replaces it, remove removes it."""
    ok(om("cfg/c1", "create"))
    ok(om("cfg/c1", "add", "--key", "port", "--value", "80"))
    again = om("cfg/c1", "add", "--key", "port", "--value", "81")
    assert (again.returncode, again.stderr) == (
        1, b"om: error: cfg/c1: key 'port' already exists (change it with 'change')\n"
    )  # fmt: skip
    ok(om("cfg/c1", "change", "--key", "port", "--value", "8080"))
    assert ok(om("cfg/c1", "decode", "--key", "port")) == b"8080"
    ok(om("cfg/c1", "remove", "--key", "port"))
    assert ok(om("cfg/c1", "keys")) == b""


def test_cfg_values_stay_readable_in_the_config(om: Om, tmp_path: Path) -> None:
    """cfg is om3's plain key store: plain text is written `literal:`."""
    ok(om("cfg/c1", "create"))
    ok(om("cfg/c1", "add", "--key", "port", "--value", "8080"))
    assert "port = literal:8080\n" in (tmp_path / "etc" / "cfg" / "c1.conf").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("decode", "--key", "nope"), "om: error: sec/s1: no key 'nope'"),
        (("remove", "--key", "nope"), "om: error: sec/s1: no key 'nope'"),
        (("add", "--key", "a b", "--value", "v"), "om: error: invalid key 'a b': expected"),
        (("add", "--key", "k", "--from", "/dev/zero"),
         "om: error: cannot read /dev/zero: not a regular file (a character device)"),
    ],
)  # fmt: skip
def test_key_errors_are_one_sentence(om: Om, args: tuple[str, ...], message: str) -> None:
    """A missing key, a bad key name, an unreadable --from: exit 1, one line."""
    ok(om("sec/s1", "create"))
    proc = om("sec/s1", *args)
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith(message), proc.stderr
    assert proc.stderr.count(b"\n") == 1


def test_key_commands_need_a_key_store(om: Om, tmp_path: Path) -> None:
    """A svc holds no keys; a store that does not exist is "not found" (exit 2)."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "web.conf").write_text(
        "[DEFAULT]\nid = 0d1c7f0e-0000-4000-8000-00000000ac\n"
    )
    svc = om("web", "add", "--key", "k", "--value", "v")
    assert (svc.returncode, svc.stderr) == (
        1, b"om: error: web is a svc: only cfg, sec and usr objects hold keys\n"
    )  # fmt: skip
    missing = om("sec/nope", "keys")
    assert (missing.returncode, missing.stderr) == (
        2, f"om: error: object sec/nope not found (no {tmp_path}/etc/sec/nope.conf)\n".encode()
    )  # fmt: skip


def test_a_user_object_is_created_and_deleted(om: Om, tmp_path: Path) -> None:
    """usr: create (empty, 0600) and delete."""
    ok(om("usr/u1", "create"))
    conf = tmp_path / "etc" / "usr" / "u1.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert ok(om("usr/u1", "ls")) == b"usr/u1\n"
    ok(om("usr/u1", "delete"))
    assert not conf.exists()


def test_a_store_created_from_a_file_keeps_its_keys(om: Om, tmp_path: Path) -> None:
    """`create --config F` of an om3-style store (literal: and base64: values)."""
    (tmp_path / "c.conf").write_text("[data]\nport = literal:80\nblob = base64:AAE=\n")
    ok(om("cfg/c2", "create", "--config", "c.conf"))
    assert ok(om("cfg/c2", "keys")) == b"port\nblob\n"
    assert ok(om("cfg/c2", "decode", "--key", "blob")) == b"\x00\x01"
