"""``omc``: commands, exit codes, output streams, and the never-lose-units rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omc.compiler import cli
from omc.compiler.exitcodes import ExitStatus

ROOT = Path(__file__).resolve().parents[2]
SVC0 = ROOT / "examples" / "svc0.conf"
GOOD = """[DEFAULT]
id = 0d1c7f0e-0000-4000-8000-000000000001

[fs#1]
type = flag

[app#0]
start = /bin/true
"""
TYPO = GOOD.replace("start = /bin/true", "strat = /bin/true")
FIXED = ["--node", "n1", "--cluster-name", "lab"]


def omc(*argv: str | Path) -> int:
    """Run ``omc`` in-process (the same ``main`` the console script calls)."""
    return cli.main([str(a) for a in argv], prog="omc")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_compile_installs_units_and_reports_each_as_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first compile writes every unit and says `created` for each."""
    out = tmp_path / "units"
    assert omc("compile", SVC0, "-o", out, *FIXED) == ExitStatus.OK
    stdout = capsys.readouterr().out
    assert "opensvc-svc.svc0.target" in tree(out)
    assert sorted(line.split()[0] for line in stdout.splitlines()) == ["created"] * len(tree(out))


def test_recompiling_an_unchanged_config_reports_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second identical compile changes nothing (no daemon-reload needed)."""
    out = tmp_path / "units"
    omc("compile", SVC0, "-o", out, *FIXED)
    capsys.readouterr()
    assert omc("compile", SVC0, "-o", out, *FIXED) == ExitStatus.OK
    assert {line.split()[0] for line in capsys.readouterr().out.splitlines()} == {"unchanged"}


def test_a_broken_config_keeps_the_previously_generated_units(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo writes nothing: the last good units stay byte for byte (unlike Quadlet)."""
    out = tmp_path / "units"
    conf = write(tmp_path, "svc1.conf", GOOD)
    assert omc("compile", conf, "-o", out, *FIXED) == ExitStatus.OK
    before = tree(out)
    assert before
    conf.write_text(TYPO)
    capsys.readouterr()
    assert omc("compile", conf, "-o", out, *FIXED) == ExitStatus.CONFIG_ERROR
    captured = capsys.readouterr()
    assert tree(out) == before
    assert captured.out == ""
    assert "unknown keyword 'strat'" in captured.err


def test_removed_resource_unit_is_reported_and_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dropping a resource from the config removes its unit, and only that one."""
    out = tmp_path / "units"
    conf = write(tmp_path, "svc1.conf", GOOD)
    omc("compile", conf, "-o", out, *FIXED)
    (out / "unrelated.service").write_text("[Unit]\nDescription=not ours\n")
    conf.write_text(GOOD.split("[app#0]", maxsplit=1)[0])
    capsys.readouterr()
    assert omc("compile", conf, "-o", out, *FIXED) == ExitStatus.OK
    report = [ln.split() for ln in capsys.readouterr().out.splitlines()]
    removed = sorted(Path(path).name for change, path in report if change == "removed")
    assert removed == ["opensvc-svc.svc1-app.0.service", "opensvc-svc.svc1-app.0.slice"]
    assert "unrelated.service" in tree(out)


def test_error_text_has_location_source_line_caret_and_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Diagnostics go to stderr as `file:line:col: error: …`, the line, a caret, a hint."""
    conf = write(tmp_path, "web.conf", "[ip#0]\ndev = eth0\nipnme = 10.0.0.1\n")
    assert omc("check", conf, *FIXED) == ExitStatus.CONFIG_ERROR
    err = capsys.readouterr().err.splitlines()
    first = err.index(f"{conf}:3:1: error: unknown keyword 'ipnme' in [ip#0]")
    assert "ipnme = 10.0.0.1" in err[first + 1]
    assert err[first + 2].strip().endswith("^~~~~")
    assert "hint: did you mean 'ipname'?" in err[first + 3 : first + 6]


def test_check_rejects_a_driver_omc_does_not_run_with_its_position_and_alternative(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`omc check` on an ip.cni config: exit 1, the error at `type`, what to use instead."""
    text = "[container#0]\ntype = podman\nimage = x\n\n[ip#1]\ntype = cni\nnetns = container#0\n"
    conf = write(tmp_path, "svc.conf", text)
    assert omc("check", conf, *FIXED) == ExitStatus.CONFIG_ERROR
    err = capsys.readouterr().err.splitlines()
    first = err.index(
        f"{conf}:6:8: error: driver ip.cni in [ip#1] is not supported by omc's runtime"
    )
    assert err[first + 1 : first + 3] == ["   6 | type = cni", "     |        ^~~"]
    assert err[first + 3].startswith("hint: use type = netns (netns = container#N")


def test_every_error_of_every_file_is_reported_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two broken files with two errors each: four errors, one run, one exit status."""
    bad = "[app#0]\nstrat = /bin/true\nstpo = /bin/true\n"
    one, two = write(tmp_path, "one.conf", bad), write(tmp_path, "two.conf", bad)
    good = write(tmp_path, "good.conf", GOOD)
    out = tmp_path / "units"
    assert omc("compile", one, good, two, "-o", out, *FIXED) == ExitStatus.CONFIG_ERROR
    err = capsys.readouterr().err
    for conf in (one, two):
        assert f"{conf}:2:1: error: unknown keyword 'strat'" in err
        assert f"{conf}:3:1: error: unknown keyword 'stpo'" in err
    assert "opensvc-svc.good.target" in tree(out), "good files still install"


def test_json_format_prints_one_list_of_diagnostics_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--format json` gives machines one JSON list, with spans, on stdout."""
    conf = write(tmp_path, "web.conf", "[ip#0]\ndev = eth0\nipnme = 10.0.0.1\n")
    assert omc("check", conf, SVC0, "--format", "json", *FIXED) == ExitStatus.CONFIG_ERROR
    captured = capsys.readouterr()
    diags = json.loads(captured.out)
    errors = [d for d in diags if d["severity"] == "error"]
    assert errors[0]["code"] == "unknown-keyword"
    assert errors[0]["span"]["line"] == 3
    assert captured.err == ""


def test_dry_run_frames_units_on_stdout_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--dry-run` prints `# --- <unit> ---` then the unit, for every unit, and no file."""
    out = tmp_path / "units"
    assert omc("compile", "--dry-run", SVC0, "-o", out, *FIXED) == ExitStatus.OK
    stdout = capsys.readouterr().out
    assert stdout.startswith("# --- ")
    assert "# --- opensvc-svc.svc0.target ---\n" in stdout
    assert "X-OpenSVC-Path=svc0" in stdout
    assert not out.exists()


def test_check_validates_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`omc check` exits 0 on a valid config, prints nothing and creates nothing."""
    monkeypatch.chdir(tmp_path)
    assert omc("check", SVC0, *FIXED) == ExitStatus.OK
    assert capsys.readouterr() == ("", "")
    assert list(tmp_path.iterdir()) == []


def test_diff_is_empty_when_installed_and_shows_changes_after_an_edit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`omc diff` exits 0 when up to date, 4 with a unified diff when not."""
    out = tmp_path / "units"
    conf = write(tmp_path, "svc1.conf", GOOD)
    omc("compile", conf, "-o", out, *FIXED)
    capsys.readouterr()
    assert omc("diff", conf, "-o", out, *FIXED) == ExitStatus.OK
    assert capsys.readouterr().out == ""
    conf.write_text(GOOD.replace("/bin/true", "/bin/false"))
    assert omc("diff", conf, "-o", out, *FIXED) == ExitStatus.DIFFERS
    text = capsys.readouterr().out
    assert f"--- {out}/opensvc-svc.svc1-app.0.service" in text
    assert "+" in text and "/bin/false" in text


def test_keywords_prints_documentation(capsys: pytest.CaptureFixture[str]) -> None:
    """`omc keywords ip` documents the ip keywords, `ipname` alias included."""
    assert omc("keywords", "ip") == ExitStatus.OK
    assert "ipname" in capsys.readouterr().out


def test_unreadable_file_is_an_io_error_and_others_still_compile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing input is reported by name (exit 3); the other files are processed."""
    missing = tmp_path / "nope.conf"
    assert omc("compile", missing, SVC0, "-o", tmp_path / "u", *FIXED) == ExitStatus.IO_ERROR
    assert f"omc: error: cannot read {missing}: No such file or directory" in (
        capsys.readouterr().err
    )
    assert "opensvc-svc.svc0.target" in tree(tmp_path / "u")


@pytest.mark.parametrize(
    "argv",
    [[], ["compile"], ["frobnicate"], ["compile", str(SVC0), "--om", "relative/om"],
     ["compile", "--dry-run", "--format", "json", str(SVC0)]],
)  # fmt: skip
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A bad command line exits 2 with a message on stderr."""
    assert omc(*argv) == ExitStatus.USAGE
    assert capsys.readouterr().err


def test_unexpected_exception_is_one_line_unless_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug prints `omc: internal error: …` (exit 70); `--debug` shows the traceback."""

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("omc.compiler.pipeline.compile_text", boom)
    assert omc("check", SVC0) == ExitStatus.INTERNAL
    err = capsys.readouterr().err
    assert err == "omc: internal error: RuntimeError: boom (--debug shows the traceback)\n"
    assert "Traceback" not in err
    assert omc("--debug", "check", SVC0) == ExitStatus.INTERNAL
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_omc_runs_as_a_separate_process(tmp_path: Path) -> None:
    """The real entry point compiles a file in a fresh interpreter (start-up path)."""
    proc = subprocess.run(
        [sys.executable, "-m", "omc.compiler.cli", "compile", str(SVC0), "--dry-run", *FIXED],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "# --- opensvc-svc.svc0.target ---" in proc.stdout


FILES = {"debug": False, "node": None, "format": "text", "cluster_name": None}
UNITS = {"output": cli.UNIT_DIR, "om": None}
COMPILE = {**FILES, **UNITS, "command": "compile", "dry_run": False, "quiet": False}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["compile", "--dry-run", "a.conf"],
         {**COMPILE, "files": [Path("a.conf")], "dry_run": True}),
        (["compile", "-o", "/tmp/u", "--node", "n1", "a.conf", "b.conf", "-q"],
         {**COMPILE, "files": [Path("a.conf"), Path("b.conf")], "output": Path("/tmp/u"),
          "node": "n1", "quiet": True}),
        (["compile", "--debug", "--format=json", "--cluster-name", "c", "a.conf", "--om", "/o"],
         {**COMPILE, "files": [Path("a.conf")], "debug": True, "format": "json",
          "cluster_name": "c", "om": "/o"}),
        (["compile", "--output", "/u", "--quiet", "--dry", "a.conf"],
         {**COMPILE, "files": [Path("a.conf")], "output": Path("/u"), "quiet": True,
          "dry_run": True}),
        (["check", "a.conf", "--node", ""],
         {**FILES, "command": "check", "files": [Path("a.conf")], "node": ""}),
        (["diff", "a.conf", "-o", "/tmp/u"],
         {**FILES, **UNITS, "command": "diff", "files": [Path("a.conf")],
          "output": Path("/tmp/u")}),
        (["keywords", "app.forking"],
         {"debug": False, "command": "keywords", "driver": "app.forking"}),
        (["keywords"], {"debug": False, "command": "keywords", "driver": None}),
        (["generator", "/run/a", "/run/b", "/run/c"],
         {"debug": False, "command": "generator",
          "dirs": [Path("/run/a"), Path("/run/b"), Path("/run/c")]}),
    ],
)  # fmt: skip
def test_command_lines_parse_into_the_settings_the_commands_read(
    argv: list[str], expected: dict[str, object]
) -> None:
    """Each command's options, their defaults and value types (paths as Path)."""
    assert vars(cli.build_parser().parse_args(argv)) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compile", "--format", "xml", "a.conf"],
         "omc compile: error: argument --format: invalid choice: 'xml' "
         "(choose from 'text', 'json')"),
        (["diff", "a.conf"], "omc diff: error: the following arguments are required: -o/--output"),
        (["check"], "omc check: error: the following arguments are required: CONFIG"),
        (["check", "a.conf", "--dry-run"], "omc: error: unrecognized arguments: --dry-run"),
        (["nosuch"], "omc: error: argument COMMAND: invalid choice: 'nosuch' (choose from "
                     "'compile', 'check', 'diff', 'keywords', 'generator')"),
    ],
)  # fmt: skip
def test_a_bad_command_line_names_the_problem_and_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse's error, with the usage line, on stderr; nothing on stdout."""
    assert omc(*argv) == ExitStatus.USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: omc")
    assert err.endswith(message + "\n")


def test_help_lists_the_commands_and_exit_statuses_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`omc --help` names every command and the exit statuses; `omc compile -h` its options."""
    assert omc("--help") == ExitStatus.OK
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: omc [-h] [--debug] COMMAND ...")
    for command in cli.COMMANDS:
        assert f" {command} " in text
    assert "exit status: 0 ok, 1 config errors, 2 usage, 3 I/O error, 4 diff found" in text
    assert omc("compile", "-h") == ExitStatus.OK
    text = " ".join(capsys.readouterr().out.split())
    for option in (
        "-o DIR, --output DIR",
        "--node NODE",
        "--format {text,json}",
        "--cluster-name CLUSTER_NAME",
        "--om OM",
        "--dry-run",
        "-q, --quiet",
        "CONFIG",
    ):
        assert option in text  # fmt: skip
