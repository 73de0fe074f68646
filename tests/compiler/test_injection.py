"""No config value can inject a directive: real systemd reads back the literal values.

The proof uses systemd itself, offline: ``systemd --test --system --unit=U``
loads the unit files exactly as PID 1 would and dumps every parsed setting
(it refuses to run as root, so it runs as ``nobody``). We emit units whose
values are hostile (line breaks followed by ``[Service]`` and
``ExecStartPre=``, specifiers, ``$VAR``, quotes, backslashes, ``;``,
control characters, edge whitespace) and check that:

* the dumped ``ExecStart`` argv is exactly the config's argv (after systemd's
  documented exec-time step, ``$$`` → ``$``, which the dump does not apply);
* the dumped ``Environment`` holds exactly the config's values;
* no directive was added (no ``ExecStartPre``, no extra ``ExecStart``);
* ``X-OpenSVC-Config`` parses back to the config;
* ``systemd-analyze verify`` prints nothing.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from omc.compiler import ir
from omc.compiler.emit import EmitError, emit

HOSTILE = [
    "\n[Service]\nExecStartPre=/bin/evil",
    "%n",
    "%%",
    "$HOME",
    "${PATH}",
    "$$",
    '"',
    "'",
    "\\",
    "x\\",
    "\\n",
    ";",
    "a;b",
    "",
    " lead",
    "trail ",
    "#comment",
    "tab\there",
    "bell\x07",
    "é ü ∞",
    "--rid",
    "\r\nExecStop=/bin/evil",
]
SPAN = ir.SourceSpan(file="/etc/opensvc/inj.conf", line=1, column=1)
UNIT = "opensvc-svc.inj-app.0.service"


def _service() -> ir.Service:
    env = tuple((f"V{i}", v) for i, v in enumerate(HOSTILE))
    config = (("start", "\n".join(HOSTILE)), ("environment", list(HOSTILE)))
    res = ir.AppResource(
        rid="app#0",
        group=ir.Group.APP,
        driver="app.forking",
        span=SPAN,
        start=("/bin/echo", *HOSTILE),
        stop=("/bin/echo", *reversed(HOSTILE)),
        environment=env,
        config=config,
    )
    return ir.Service(
        path=ir.ObjectPath(name="inj"),
        id="id%n $HOME",
        source="/etc/opensvc/inj.conf",
        node="n1",
        resources=(res,),
    )


@pytest.fixture(scope="module")
def unit_dir() -> Iterator[Path]:
    """The emitted units in a directory the unprivileged dump can read."""
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        path = Path(tmp)
        path.chmod(0o755)
        om = str(Path(sys.executable).with_name("om"))
        for name, text in emit(_service(), om=om).items():
            (path / name).write_text(text)
            (path / name).chmod(0o644)
        yield path


def _dump(unit_dir: Path, unit: str) -> str:
    """systemd's own parse of `unit`, as PID 1 would load it."""
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/lib/systemd/systemd",
            "--test",
            "--system",
            f"--unit={unit}",
            "--no-pager",
        ],
        capture_output=True,
        check=False,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{unit_dir}:", "HOME": "/"},
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()  # bytes: no newline translation, a \r stays a \r
    start = out.index(f"-> Unit {unit}:")
    end = out.find("\t-> Unit ", start + 1)
    return out[start : end if end > 0 else None]


_DUMP_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "$": "$",
}


def _dump_words(line: str) -> list[str]:
    """Decode a dumped ``Command Line:`` (systemd's C-style quoting) into argv."""
    words: list[str] = []
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"|([^ ]+)', line):
        if match.group(2) is not None:
            words.append(match.group(2))
            continue
        body = match.group(1)
        out = []
        i = 0
        while i < len(body):
            if body[i] != "\\":
                out.append(body[i])
                i += 1
            elif body[i + 1] in "01234567":
                out.append(chr(int(body[i + 1 : i + 4], 8)))
                i += 4
            else:
                out.append(_DUMP_ESCAPES[body[i + 1]])
                i += 2
        words.append("".join(out))
    return words


def _exec_time(word: str) -> str:
    """systemd's documented exec-time step for Exec lines: ``$$`` is a literal ``$``."""
    return word.replace("$$", "$")


def _command_lines(dump: str, setting: str) -> list[list[str]]:
    block = re.search(rf"-> {setting}:\n((?:\t\t\t.*\n)+)", dump)
    if block is None:
        return []
    return [
        _without_stream([_exec_time(w) for w in _dump_words(ln.split("Command Line: ", 1)[1])])
        for ln in block.group(1).split("\n")
        if "Command Line: " in ln
    ]


def _without_stream(argv: list[str]) -> list[str]:
    """An app's command as it runs behind systemd-cat (the words after its ``--``)."""
    if argv[:1] == ["/usr/bin/systemd-cat"] and "--" in argv:
        return argv[argv.index("--") + 1 :]
    return argv


def test_exec_lines_keep_the_literal_argv(unit_dir: Path) -> None:
    """ExecStart/ExecStop as systemd parsed them are exactly the config's argv."""
    dump = _dump(unit_dir, UNIT)
    assert _command_lines(dump, "ExecStart") == [["/bin/echo", *HOSTILE]]
    assert _command_lines(dump, "ExecStop") == [["/bin/echo", *reversed(HOSTILE)]]


def test_no_directive_is_injected(unit_dir: Path) -> None:
    """Only the settings the emitter wrote exist: one ExecStart, one ExecStop, no pre/post."""
    dump = _dump(unit_dir, UNIT)
    assert len(_command_lines(dump, "ExecStart")) == 1
    assert len(_command_lines(dump, "ExecStop")) == 1
    for setting in ("ExecStartPre", "ExecStartPost", "ExecStopPost", "ExecReload"):
        assert f"-> {setting}:" not in dump


def test_environment_keeps_literal_values(unit_dir: Path) -> None:
    """Environment= values as systemd parsed them are exactly the config's values."""
    dump = _dump(unit_dir, UNIT)
    expected = "".join(f"\t\tEnvironment: V{i}={v}\n" for i, v in enumerate(HOSTILE))
    assert expected in dump
    assert "\t\tEnvironment: OPENSVC_RID=app#0\n" in dump
    assert "\t\tEnvironment: OPENSVC_ID=id%n $HOME\n" in dump


def test_metadata_parses_back(unit_dir: Path) -> None:
    """X-OpenSVC-Config is one line of JSON equal to the resource config."""
    text = (unit_dir / UNIT).read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("X-OpenSVC-Config="))
    assert json.loads(line.split("=", 1)[1]) == {
        "start": "\n".join(HOSTILE),
        "environment": HOSTILE,
    }
    assert [ln for ln in text.splitlines() if ln.startswith("[")] == ["[Unit]", "[Service]"]


def test_verify_is_silent(unit_dir: Path) -> None:
    """systemd-analyze verify finds nothing to say about the hostile units."""
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "--recursive-errors=yes", str(unit_dir / UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_object_values_with_line_breaks_are_refused() -> None:
    """An object id that would break the line is an EmitError, not a unit."""
    service = ir.Service(
        path=ir.ObjectPath(name="inj"), id="x\n[Service]", source="/etc/x.conf", node="n1"
    )
    with pytest.raises(EmitError, match="line break"):
        emit(service, om="/usr/bin/om")


def _random_words(seed: int, count: int) -> list[str]:
    """Words drawn from the characters that matter to unit syntax, plus some unicode."""
    rng = random.Random(seed)
    alphabet = "ab \t\n\r\\\"'$%;#{}=@-:+!|\x01\x7f\u00e9\u2028\u00a0x/.*"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(count)]


def test_seeded_fuzz_through_systemds_loader(tmp_path_factory: pytest.TempPathFactory) -> None:
    """300 random words survive Exec and Environment quoting exactly, per systemd itself."""
    words = _random_words(7, 300)
    res = ir.AppResource(
        rid="app#0",
        group=ir.Group.APP,
        driver="app.forking",
        span=SPAN,
        start=("/bin/echo", *words),
        environment=tuple((f"W{i}", w) for i, w in enumerate(words)),
    )
    svc = ir.Service(
        path=ir.ObjectPath(name="inj"), id="i", source="/etc/x.conf", node="n", resources=(res,)
    )
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        path = Path(tmp)
        path.chmod(0o755)
        for name, text in emit(svc, om="/usr/bin/true").items():
            (path / name).write_text(text)
            (path / name).chmod(0o644)
        dump = _dump(path, UNIT)
    assert _command_lines(dump, "ExecStart") == [["/bin/echo", *words]]
    expected = "".join(f"\t\tEnvironment: W{i}={w}\n" for i, w in enumerate(words))
    assert expected in dump


def test_verbatim_settings_keep_specifier_characters() -> None:
    """SourcePath, What, Where, Options, User, Group, WorkingDirectory read back literally."""
    fs = ir.FsResource(
        rid="fs#0",
        group=ir.Group.FS,
        driver="fs.ext4",
        span=SPAN,
        fs_type="ext4",
        is_mountable=True,
        dev="/srv/a%b c.img",
        mnt="/srv/x%y z",
        mnt_opt="ro,x=%n",
    )
    application = ir.AppResource(
        rid="app#0",
        group=ir.Group.APP,
        driver="app.forking",
        span=SPAN,
        start=("/bin/true",),
        user="u%n",
        user_group="g%n",
        cwd="/tmp/a%nb c",
    )
    svc = ir.Service(
        path=ir.ObjectPath(name="inj"),
        id="i",
        source="/etc/opensvc/a%n b.conf",
        node="n",
        resources=(fs, application),
    )
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        path = Path(tmp)
        path.chmod(0o755)
        for name, text in emit(svc, om="/usr/bin/true").items():
            (path / name).write_text(text)
            (path / name).chmod(0o644)
        mount = _dump(path, "srv-x\\x25y\\x20z.mount").split("\n")
        app_dump = _dump(path, UNIT).split("\n")
    for line in ("Source Path: /etc/opensvc/a%n b.conf", "Where: /srv/x%y z"):
        assert f"\t\t{line}" in mount
    assert "\t\tWhat: /srv/a%b c.img" in mount
    assert "\t\tOptions: ro,x=%n,loop" in mount
    for line in ("User: u%n", "Group: g%n", "WorkingDirectory: /tmp/a%nb c"):
        assert f"\t\t{line}" in app_dump
