"""``omc-generator``: /etc/opensvc layout discovery, output, cache, last-known-good units."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from omc.compiler import cli, generator
from omc.compiler.generator import Outcome

from tests.trees import layout

ROOT = Path(__file__).resolve().parents[2]
GOOD = """[DEFAULT]
id = 0d1c7f0e-0000-4000-8000-000000000002

[fs#1]
type = flag

[app#0]
start = /bin/true
"""
BROKEN = GOOD.replace("start =", "strat =")


def gen(etc: Path, tmp_path: Path, log: io.StringIO | None = None) -> tuple[generator.Item, ...]:
    """One generator run into a fresh normal dir (as systemd gives it)."""
    normal = tmp_path / "run" / f"gen{len(list(tmp_path.glob('run/*')))}"
    normal.mkdir(parents=True)
    return generator.run(
        normal, etc=etc, lkg=tmp_path / "lkg", node="n1", om="/usr/bin/om", log=log or io.StringIO()
    )


def units_of(items: tuple[generator.Item, ...], tmp_path: Path) -> dict[str, str]:
    latest = sorted((tmp_path / "run").iterdir())[-1]
    return {p.name: p.read_text() for p in sorted(latest.iterdir())}


def test_generator_writes_units_of_every_config(etc: Path, tmp_path: Path) -> None:
    """Each good config's units land in the normal dir."""
    layout(etc, {"svc1.conf": GOOD, "svc2.conf": GOOD.replace("0002", "0003")})
    items = gen(etc, tmp_path)
    assert [i.outcome for i in items] == [Outcome.COMPILED, Outcome.COMPILED]
    names = units_of(items, tmp_path)
    assert "opensvc-svc.svc1.target" in names
    assert "opensvc-svc.svc2.target" in names


def test_unchanged_config_is_served_from_the_cache(etc: Path, tmp_path: Path) -> None:
    """A second boot with the same config copies cached units, byte-identical."""
    layout(etc, {"svc1.conf": GOOD})
    gen(etc, tmp_path)
    first = units_of((), tmp_path)
    items = gen(etc, tmp_path)
    assert [i.outcome for i in items] == [Outcome.CACHED]
    assert units_of(items, tmp_path) == first


def test_broken_config_keeps_its_last_good_units(etc: Path, tmp_path: Path) -> None:
    """After a typo, the service does not vanish at the next boot: last good units are kept."""
    layout(etc, {"svc1.conf": GOOD})
    gen(etc, tmp_path)
    good_units = units_of((), tmp_path)
    layout(etc, {"svc1.conf": BROKEN})
    log = io.StringIO()
    items = gen(etc, tmp_path, log)
    assert [i.outcome for i in items] == [Outcome.KEPT]
    assert units_of(items, tmp_path) == good_units
    text = log.getvalue()
    assert "<3>omc-generator: " in text
    assert "unknown keyword 'strat'" in text
    assert "keeping the last good units of svc1" in text


def test_broken_config_without_history_emits_nothing_but_others_proceed(
    etc: Path, tmp_path: Path
) -> None:
    """A never-good config yields no unit and an error; the other configs still generate."""
    layout(etc, {"bad.conf": BROKEN, "good.conf": GOOD})
    log = io.StringIO()
    items = gen(etc, tmp_path, log)
    assert {str(i.path): i.outcome for i in items} == {
        "bad": Outcome.FAILED,
        "good": Outcome.COMPILED,
    }
    names = units_of(items, tmp_path)
    assert not any("svc.bad" in n for n in names)
    assert "opensvc-svc.good.target" in names
    assert "no previous good units" in log.getvalue()


def test_fixed_config_replaces_the_kept_units(etc: Path, tmp_path: Path) -> None:
    """Once the config is fixed, the new units are generated and cached."""
    layout(etc, {"svc1.conf": GOOD})
    gen(etc, tmp_path)
    layout(etc, {"svc1.conf": BROKEN})
    gen(etc, tmp_path)
    layout(etc, {"svc1.conf": GOOD.replace("/bin/true", "/bin/false")})
    items = gen(etc, tmp_path)
    assert [i.outcome for i in items] == [Outcome.COMPILED]
    assert "/bin/false" in units_of(items, tmp_path)["opensvc-svc.svc1-app.0.service"]


def test_cache_key_changes_with_node(etc: Path, tmp_path: Path) -> None:
    """Units compiled for another node are never reused (scoping differs per node)."""
    layout(etc, {"svc1.conf": GOOD})
    gen(etc, tmp_path)
    normal = tmp_path / "other"
    items = generator.run(
        normal, etc=etc, lkg=tmp_path / "lkg", node="n2", om="/usr/bin/om", log=io.StringIO()
    )
    assert [i.outcome for i in items] == [Outcome.COMPILED]


@pytest.mark.parametrize("prog", ["omc-generator", "opensvc-generator"])
def test_generator_mode_is_selected_by_program_name(
    prog: str, etc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invoked as `omc-generator NORMAL EARLY LATE`, omc generates into NORMAL only."""
    layout(etc, {"svc1.conf": GOOD})
    monkeypatch.setenv("OMC_ETC", str(etc))
    monkeypatch.setenv("OMC_LKG_DIR", str(tmp_path / "lkg"))
    monkeypatch.setenv("OMC_LOG", "stderr")
    dirs = [tmp_path / d for d in ("normal", "early", "late")]
    assert cli.main([str(d) for d in dirs], prog=prog) == 0
    assert (dirs[0] / "opensvc-svc.svc1.target").is_file()
    assert not dirs[1].exists()
    assert not dirs[2].exists()


def test_generator_subcommand_never_fails_the_boot_on_bad_configs(
    etc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`omc generator DIR` exits 0 even when a config is broken (systemd would log a failure)."""
    layout(etc, {"bad.conf": BROKEN})
    monkeypatch.setenv("OMC_ETC", str(etc))
    monkeypatch.setenv("OMC_LKG_DIR", str(tmp_path / "lkg"))
    monkeypatch.setenv("OMC_LOG", "stderr")
    assert cli.main(["generator", str(tmp_path / "normal")], prog="omc") == 0


def test_real_systemd_runs_the_generator_and_loads_its_units(etc: Path, tmp_path: Path) -> None:
    """systemd's own generator machinery (systemd-analyze --generators=yes) finds our units,
    and still finds them after the config is broken (last known good)."""
    layout(etc, {"svc1.conf": GOOD})
    gens = tmp_path / "generators"
    gens.mkdir()
    script = gens / "omc-generator"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom omc.compiler.cli import main\n"
                      "sys.exit(main())\n")  # fmt: skip
    script.chmod(0o755)
    env = {
        **os.environ,
        "SYSTEMD_GENERATOR_PATH": str(gens),
        "OMC_ETC": str(etc),
        "OMC_LKG_DIR": str(tmp_path / "lkg"),
        "OMC_LOG": "stderr",
        "OMC_NODE": "n1",
        "OMC_OM": "/bin/true",
    }
    argv = ["systemd-analyze", "--generators=yes", "verify", "--man=no"]
    proc = subprocess.run(
        [*argv, "opensvc-svc.svc1.target"], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not found" not in proc.stderr
    missing = subprocess.run(
        [*argv, "opensvc-svc.nosuch.target"], env=env, capture_output=True, text=True, check=False
    )
    assert missing.returncode != 0, "the check above would pass for any name"
    layout(etc, {"svc1.conf": BROKEN})
    kept = subprocess.run(
        [*argv, "opensvc-svc.svc1.target"], env=env, capture_output=True, text=True, check=False
    )
    assert kept.returncode == 0, "a broken config keeps its last good units under systemd too"
    assert "unknown keyword 'strat'" in kept.stderr


def test_a_compiler_crash_on_one_config_keeps_its_last_good_units(
    etc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception while compiling one config is logged; its last good units stay out."""
    layout(etc, {"svc1.conf": GOOD, "svc2.conf": GOOD})
    gen(etc, tmp_path)
    good_units = units_of((), tmp_path)
    layout(etc, {"svc1.conf": GOOD + "\n", "svc2.conf": GOOD + "\n"})

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("omc.compiler.pipeline.build", crash)
    log = io.StringIO()
    items = gen(etc, tmp_path, log)
    assert [i.outcome for i in items] == [Outcome.KEPT, Outcome.KEPT]
    assert units_of(items, tmp_path) == good_units
    assert "internal error: RuntimeError: bug" in log.getvalue()


def test_many_configs_compile_in_parallel_with_the_same_result(
    etc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forked worker pool (used past a threshold) gives the same units as in-process."""
    layout(etc, {f"svc{i}.conf": GOOD for i in range(6)} | {"bad.conf": BROKEN})
    serial = gen(etc, tmp_path)
    expected = units_of(serial, tmp_path)
    monkeypatch.setattr(generator, "PARALLEL_THRESHOLD", 2)
    monkeypatch.setattr(generator.os, "cpu_count", lambda: 2)
    items = generator.run(
        tmp_path / "par", etc=etc, lkg=tmp_path / "lkg2", node="n1", om="/usr/bin/om",
        log=io.StringIO(),
    )  # fmt: skip
    assert [i.outcome for i in items] == [i.outcome for i in serial]
    assert {p.name: p.read_text() for p in (tmp_path / "par").iterdir()} == expected


def test_a_private_config_gets_private_units_and_the_cache_is_root_only(
    etc: Path, tmp_path: Path
) -> None:
    """A 0600 config: its units 0600 (slices 0644), compiled or from the cache; the
    last-known-good cache holds unit texts: 0600 whatever the config's mode."""
    layout(etc, {"svc1.conf": GOOD, "svc2.conf": GOOD.replace("0002", "0003")})
    (etc / "svc1.conf").chmod(0o600)
    (etc / "svc2.conf").chmod(0o644)
    for _ in range(2):  # compiled, then cached
        gen(etc, tmp_path)
        latest = sorted((tmp_path / "run").iterdir())[-1]
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in latest.iterdir()}
        assert modes["opensvc-svc.svc1.target"] == modes["opensvc-svc.svc1-app.0.service"] == 0o600
        assert modes["opensvc-svc.svc1.slice"] == modes["opensvc-svc.svc2.target"] == 0o644
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "lkg").iterdir()} == {0o600}
