"""What ``omc`` does with hostile or careless input (issue #10: items 11, 12, 14).

Configs reach ``omc`` from users, scripts and (soon) the cluster: a path with ``..``,
a name ``om`` refuses, a device, a FIFO or a file the size of a disk must each end in
one clear line, never in a hang, a traceback or a unit systemd warns about.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omc.compiler import cli, convert
from omc.compiler.exitcodes import ExitStatus

GOOD = """[DEFAULT]
id = 0d1c7f0e-0000-4000-8000-000000000001

[app#0]
start = /bin/true
"""
FIXED = ["--node", "n1", "--cluster-name", "lab"]
BIN = Path(sys.executable).parent
MAX_CONFIG_BYTES = 1 << 20  # docs/omc.md: the bound of a config file


def omc(*argv: str | Path) -> int:
    return cli.main([str(a) for a in argv], prog="omc")


def source_paths(folder: Path) -> set[str]:
    return {
        line.removeprefix("SourcePath=")
        for unit in folder.iterdir()
        for line in unit.read_text().splitlines()
        if line.startswith("SourcePath=")
    }


def test_source_path_is_normalised_not_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`omc compile ../x/svc.conf` writes SourcePath=/…/x/svc.conf: no `..`, symlinks kept."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "web.conf").write_text(GOOD)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    out = tmp_path / "units"
    assert omc("compile", "../link/./web.conf", "-o", out, "-q", *FIXED) == ExitStatus.OK
    assert source_paths(out) == {str(tmp_path / "link" / "web.conf")}


def run_omc(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``omc`` in a child process: a hang or a memory blow-up must not take the test run
    down with it (the timeout is a guard, never the assertion)."""
    return subprocess.run([BIN / "omc", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, check=False, timeout=120)  # fmt: skip


def test_check_refuses_a_device_instead_of_reading_it_forever(tmp_path: Path) -> None:
    """`omc check /dev/zero` is one line naming the file, exit 3; nothing is read."""
    proc = run_omc("check", "/dev/zero", *FIXED, cwd=tmp_path)
    assert proc.returncode == ExitStatus.IO_ERROR
    assert (
        proc.stderr
        == "omc: error: cannot read /dev/zero: not a regular file (a character device)\n"
    )


def test_check_refuses_a_fifo_instead_of_hanging(tmp_path: Path) -> None:
    """A FIFO with no writer is refused at once (opening it must not block)."""
    fifo = tmp_path / "web.conf"
    os.mkfifo(fifo)
    proc = run_omc("check", fifo, *FIXED, cwd=tmp_path)
    assert proc.returncode == ExitStatus.IO_ERROR
    assert proc.stderr == f"omc: error: cannot read {fifo}: not a regular file (a FIFO)\n"


def test_a_config_over_the_size_bound_is_refused(tmp_path: Path) -> None:
    """Configs are bounded (1 MiB): a bigger file is an I/O error naming the bound."""
    big = tmp_path / "big.conf"
    with big.open("w") as fh:
        fh.write(GOOD)
        fh.truncate(MAX_CONFIG_BYTES + 1)  # sparse: costs no disk
    proc = run_omc("compile", big, "-o", tmp_path / "units", *FIXED, cwd=tmp_path)
    assert proc.returncode == ExitStatus.IO_ERROR
    assert proc.stderr == (
        f"omc: error: cannot read {big}: larger than 1 MiB, the bound of a config file\n"
    )
    assert not (tmp_path / "units").exists()


def test_a_config_at_the_size_bound_compiles(tmp_path: Path) -> None:
    """Exactly 1 MiB is accepted: the bound is inclusive."""
    config = tmp_path / "web.conf"
    config.write_text(GOOD + "# " + "x" * (MAX_CONFIG_BYTES - len(GOOD) - 3) + "\n")
    assert config.stat().st_size == MAX_CONFIG_BYTES
    assert omc("check", config, *FIXED) == ExitStatus.OK


def _python_steps(fn: Callable[[], object]) -> int:
    """How many Python lines ``fn`` executes (C code, like ``re``, counts for nothing):
    a measure of work that does not depend on the machine or its load."""
    steps = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Callable[..., object]:
        nonlocal steps
        steps += event == "line"
        return tracer

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return steps


def test_splitting_one_long_word_costs_the_same_steps_whatever_its_length() -> None:
    """shlex-style splitting is linear: a 100 kB word takes no more Python steps than a
    1 kB one (Python's shlex appends each character to a string: quadratic)."""
    short = _python_steps(lambda: convert.to_shlex("A=" + "x" * 1_000))
    long = _python_steps(lambda: convert.to_shlex("A=" + "x" * 100_000))
    assert long == short


def _words(count: int, width: int) -> str:
    """``count`` words of four parts each (plain, '…', "…" with an escape, an escaped
    blank), every run ``width`` characters long."""
    run = "x" * width
    return " ".join([f'{run}\'{run}\'"{run}\\"{run}"\\ {run}'] * count)


def test_splitting_cost_grows_with_the_words_not_their_characters() -> None:
    """Twice the words, at most about twice the steps; wider words, no more steps."""
    one = _python_steps(lambda: convert.to_shlex(_words(100, 1)))
    two = _python_steps(lambda: convert.to_shlex(_words(200, 1)))
    wide = _python_steps(lambda: convert.to_shlex(_words(100, 1_000)))
    assert two <= 2 * one + 50
    assert wide <= one
    assert convert.to_shlex(_words(1, 2)) == tuple(shlex.split(_words(1, 2)))


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(" \t\n\r'\"\\ab=$%#;\x00é"), max_size=40))
def test_splitting_matches_python_shlex(raw: str) -> None:
    """Same words as ``shlex.split(raw, posix=True)``, and the same error on bad quoting."""
    try:
        expected: tuple[str, ...] | str = tuple(shlex.split(raw, comments=False, posix=True))
    except ValueError as exc:
        expected = f"cannot split command: {exc}"
    try:
        got: tuple[str, ...] | str = convert.to_shlex(raw)
    except convert.ConvertError as exc:
        got = exc.message
    assert got == expected


def test_a_megabyte_environment_value_compiles(tmp_path: Path) -> None:
    """A value just under the config bound compiles into the unit's Environment= line."""
    value = "x" * (MAX_CONFIG_BYTES - 200)
    config = tmp_path / "web.conf"
    config.write_text(GOOD + f"environment = BIG={value}\n")
    out = tmp_path / "units"
    assert omc("compile", config, "-o", out, "-q", *FIXED) == ExitStatus.OK
    assert f"BIG={value}" in (out / "opensvc-svc.web-app.0.service").read_text()


@pytest.mark.parametrize(
    ("relative", "why"),
    [
        ("Bad_Name.conf", "invalid name 'Bad_Name'"),
        ("svc.conf", "invalid name 'svc': it is a reserved kind name"),
        ("web\n.conf", "invalid name 'web\\n'"),
        ("namespaces/Ns1/svc/web.conf", "invalid namespace 'Ns1'"),
        ("x" * 64 + ".conf", f"invalid name '{'x' * 64}'"),
    ],
)
def test_omc_refuses_the_object_names_om_refuses(
    tmp_path: Path, relative: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file whose name `om` would refuse compiles to a diagnostic, not to units."""
    config = tmp_path / relative
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(GOOD)
    out = tmp_path / "units"
    assert omc("compile", config, "-o", out, *FIXED) == ExitStatus.CONFIG_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"{config}: error: {why}"), err
    assert "hint: rename the file" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("raw", "argv"),
    [
        ("/bin/sh -c 'exportfs -au; exportfs -f'", ("/bin/sh", "-c", "exportfs -au; exportfs -f")),
        ('sh -c "a && b"', ("sh", "-c", "a && b")),
        ("bash -c 'a | b'", ("bash", "-c", "a | b")),
        ("echo a && echo b", ("/bin/sh", "-c", "echo a && echo b")),
        ("/bin/sh -c 'a; b' ; echo c", ("/bin/sh", "-c", "/bin/sh -c 'a; b' ; echo c")),
        ("/bin/sh -c 'echo $0; x' name", ("/bin/sh", "-c", "/bin/sh -c 'echo $0; x' name")),
    ],
)
def test_a_shell_command_is_not_wrapped_in_a_second_shell(raw: str, argv: tuple[str, ...]) -> None:
    """`/bin/sh -c '…; …'` runs as written; only other commands with `;`, `|` or `&&` get
    om3's `/bin/sh -c <text>` wrap (same effect, one shell, a readable `run:` line)."""
    assert convert.to_command(raw) == argv


@pytest.mark.parametrize(
    ("config_mode", "unit_mode"), [(0o600, 0o600), (0o640, 0o600), (0o644, 0o644)]
)
def test_units_are_no_more_readable_than_their_config(
    tmp_path: Path, config_mode: int, unit_mode: int
) -> None:
    """X-OpenSVC-Config embeds every keyword: a config others cannot read gives units
    they cannot read either (slices, which name the object only, stay 0644)."""
    config = tmp_path / "web.conf"
    config.write_text(GOOD)
    config.chmod(config_mode)
    out = tmp_path / "units"
    assert omc("compile", config, "-o", out, "-q", *FIXED) == ExitStatus.OK
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes.pop("opensvc-svc.web.slice") == modes.pop("opensvc-svc.web-app.0.slice") == 0o644
    modes.pop("opensvc.slice")
    assert modes == {
        "opensvc-svc.web.target": unit_mode,
        "opensvc-svc.web-app.0.service": unit_mode,
    }
