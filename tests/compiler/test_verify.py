"""systemd itself accepts every unit we emit: ``systemd-analyze verify`` over all outputs.

Every corpus file that compiles and every valid example is emitted with ``om``
pointing at an existing executable (verify checks ``ExecStart=`` binaries), and
the units of many services are verified together, a few directories per call
(one call costs ~60 ms whatever its size). Services whose unit names clash (two
mounts of the same mount point) go to different batches. Any line verify prints
about a unit (error or warning) fails the file that produced it, with one
exception: "Command X is not executable" where X is a program the *config* names
(``/usr/sbin/rpc.nfsd``, a relative ``weblauncher``) that this build host simply
lacks. A program word with a space in it, or a shell builtin, is still a failure:
that is a command we emitted wrongly.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
from omc.compiler.pipeline import build

from .asserts import EXAMPLE_CLUSTER, EXAMPLE_NODE
from .test_corpus import CLUSTER, CORPUS, NODE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.conf"))
VERIFY_OM = "/bin/true"
VERIFY = ["systemd-analyze", "verify", "--man=no", "--recursive-errors=yes"]

SHELL_BUILTINS = frozenset({"ulimit", "cd", "export", "source", ".", "exit", "set", "exec", "eval"})
NOT_EXECUTABLE = re.compile(r"Command (.+) is not executable: No such file or directory")

# Files whose units systemd rejects because of a known omc gap: label -> reason.
KNOWN_FAILURES: dict[str, str] = {}

Outputs = dict[str, dict[str, str]]  # label -> {unit name: text}


@functools.cache
def compiled_outputs() -> Outputs:
    """Units of every corpus file and example that compiles, by label."""
    outputs: Outputs = {}
    for label, file, node, cluster in [
        *((f"corpus/{f.name}", f, NODE, CLUSTER) for f in CORPUS),
        *((f"examples/{f.name}", f, EXAMPLE_NODE, EXAMPLE_CLUSTER) for f in EXAMPLES),
    ]:
        text = file.read_bytes().decode("utf-8", errors="replace")
        result = build(text, filename=str(file), node=node, om=VERIFY_OM, cluster=cluster)
        if result.ok and result.units:
            outputs[label] = dict(result.units)
    return outputs


def batches(outputs: Outputs) -> list[Outputs]:
    """Group services so that no unit name has two different texts in one batch."""
    groups: list[tuple[Outputs, dict[str, str]]] = []
    for label, units in outputs.items():
        for members, names in groups:
            if all(names.get(n, t) == t for n, t in units.items()):
                members[label] = units
                names.update(units)
                break
        else:
            groups.append(({label: units}, dict(units)))
    return [members for members, _ in groups]


def verify_batch(folder: Path, batch: Outputs) -> dict[str, list[str]]:
    """Run verify once over a batch; map every output line to the services it names."""
    folder.mkdir(parents=True)
    owners: dict[str, list[str]] = {}
    for label, units in batch.items():
        for name, text in units.items():
            (folder / name).write_text(text)
            owners.setdefault(name, []).append(label)
    files = sorted(str(p) for p in folder.iterdir())
    proc = subprocess.run([*VERIFY, *files], capture_output=True, text=True, check=False)
    problems: dict[str, list[str]] = {label: [] for label in batch}
    for line in (proc.stdout + proc.stderr).splitlines():
        if absent_on_this_host(line):
            continue
        named = [n for n in owners if n in line]
        unit = max(named, key=len) if named else None
        for label in owners.get(unit, list(batch)) if unit else list(batch):
            problems[label].append(line)
    return problems


def absent_on_this_host(line: str) -> bool:
    """A program named by the config that this machine lacks (not an emission problem)."""
    match = NOT_EXECUTABLE.search(line)
    if match is None:
        return False
    program = match.group(1)
    return program != VERIFY_OM and " " not in program and program not in SHELL_BUILTINS


@pytest.fixture(scope="module")
def verify_problems(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, list[str]]:
    """One verify invocation per batch, over every compiled output."""
    root = tmp_path_factory.mktemp("verify")
    problems: dict[str, list[str]] = {}
    for index, batch in enumerate(batches(compiled_outputs())):
        problems.update(verify_batch(root / f"batch{index}", batch))
    return problems


LABELS = sorted(compiled_outputs())


def _param(label: str) -> object:
    reason = KNOWN_FAILURES.get(label)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(label, marks=marks, id=label)


@pytest.mark.parametrize("label", [_param(label) for label in LABELS])
def test_systemd_analyze_verify_reports_nothing(
    label: str, verify_problems: Mapping[str, list[str]]
) -> None:
    """`systemd-analyze verify` prints no error and no warning for this file's units."""
    assert verify_problems[label] == []


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The harness does fail: an unknown key and a relative program path are reported."""
    bad = "[Unit]\nDescription=x\n[Service]\nTyp=oneshot\nExecStart=relative/prog\n"
    problems = verify_batch(tmp_path / "b", {"bad": {"omc-bad.service": bad}})
    assert any("Typ" in line for line in problems["bad"])
    assert any("relative/prog" in line for line in problems["bad"])


@pytest.mark.parametrize(
    ("line", "absent"),
    [
        (
            "a.service: Command /usr/sbin/rpc.nfsd is not executable: No such file or directory",
            True,
        ),
        ("a.service: Command weblauncher is not executable: No such file or directory", True),
        ("a.service: Command /bin/echo app#1 is not executable: No such file or directory", False),
        ("a.service: Command ulimit is not executable: No such file or directory", False),
        (f"a.service: Command {VERIFY_OM} is not executable: No such file or directory", False),
        ("a.service:3: Unknown key name 'Typ' in section 'Service', ignoring.", False),
    ],
)
def test_only_programs_missing_on_this_host_are_tolerated(line: str, absent: bool) -> None:
    """The one tolerated verify message is a config's own program absent here."""
    assert absent_on_this_host(line) is absent


def test_batches_never_mix_two_texts_of_one_unit_name() -> None:
    """Two services mounting the same point land in different batches; shared units merge."""
    outputs = {
        "a": {"srv.mount": "A", "opensvc.slice": "S"},
        "b": {"srv.mount": "B", "opensvc.slice": "S"},
        "c": {"x.service": "C", "opensvc.slice": "S"},
    }
    assert [sorted(b) for b in batches(outputs)] == [["a", "c"], ["b"]]
