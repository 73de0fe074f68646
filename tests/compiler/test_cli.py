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


@pytest.mark.parametrize(
    "argv",
    [
        ["compile", "--dry-run", "a.conf"],
        ["--debug", "compile", "-o", "/tmp/u", "--node", "n1", "a.conf", "b.conf", "-q"],
        ["compile", "--format=json", "--cluster-name", "c", "a.conf", "--om", "/usr/bin/om"],
        ["check", "a.conf", "--node=n2"],
        ["diff", "a.conf", "-o", "/tmp/u"],
        ["keywords", "app.forking"],
        ["generator", "/run/a", "/run/b", "/run/c"],
        ["compile"],
        ["compile", "--help"],
        ["compile", "--dry", "a.conf"],
        ["compile", "--format", "xml", "a.conf"],
        ["diff", "a.conf"],
        ["--help"],
        ["-h", "compile"],
        ["--deb", "check", "a.conf"],
        ["nosuch", "a.conf"],
        [],
    ],
)
def test_parsing_one_command_matches_the_full_parser(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Declaring only the named command parses, helps and fails exactly as the full parser."""

    def outcome(parser: object) -> tuple[object, str, str]:
        try:
            result: object = vars(parser.parse_args(argv))  # type: ignore[attr-defined]
        except SystemExit as exc:
            result = exc.code
        out, err = capsys.readouterr()
        return result, out, err

    assert outcome(cli.build_parser(cli._command_of(argv))) == outcome(cli.build_parser())


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["compile", "a.conf"], "compile"),
        (["--debug", "generator", "/run/a"], "generator"),
        (["--help"], None),
        (["-h", "compile"], None),
        (["nosuch"], None),
        ([], None),
    ],
)
def test_command_of_names_the_command_only_when_alone_enough(
    argv: list[str], command: str | None
) -> None:
    """A known command after top-level flags is parsed by its sub-parser alone."""
    assert cli._command_of(argv) == command


PLAIN_LINES = [
    ["compile", "--dry-run", "a.conf"],
    ["compile", "--dry-run", "--node", "n1", "a.conf", "b.conf"],
    ["--debug", "compile", "-o", "/tmp/u", "--om", "/usr/bin/om", "a.conf", "-q"],
    ["compile", "--debug", "--format", "json", "--cluster-name", "c", "a.conf"],
    ["check", "a.conf", "--node", ""],
    ["generator", "/run/a", "/run/b", "/run/c"],
    ["--debug", "generator", "/run/a"],
]


@pytest.mark.parametrize("argv", PLAIN_LINES)
def test_plain_command_lines_skip_argparse_with_the_same_result(argv: list[str]) -> None:
    """The common command lines are parsed without argparse, into what argparse gives."""
    plain = cli._plain_args(argv)
    assert plain is not None
    assert plain == cli.build_parser().parse_args(argv)


def test_any_other_command_line_is_left_to_argparse() -> None:
    """On random command lines the shortcut either agrees with argparse or declines."""
    import random

    rng = random.Random(7)
    words = [
        "compile", "check", "diff", "generator", "keywords", "--debug", "--node", "--format",
        "--format=json", "--cluster-name", "-o", "--output", "--om", "--dry-run", "--dry",
        "-q", "--quiet", "-h", "--", "-", "json", "text", "xml", "a.conf", "b.conf", "",
        "-oDIR", "/tmp/u", "-x",
    ]  # fmt: skip
    agreed = 0
    for _ in range(3000):
        head = rng.choice([[], ["--debug"], ["compile"], ["check"], ["generator"]])
        argv = head + [rng.choice(words) for _ in range(rng.randint(0, 7))]
        plain = cli._plain_args(argv)
        if plain is None:
            continue
        agreed += 1
        assert plain == cli.build_parser().parse_args(argv), argv
    assert agreed > 150
