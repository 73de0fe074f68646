"""The ``run:`` lines (issue #10 item 15): the command as the user wrote it and as it runs,
shell-quoted, never the unit file's escaped text; the seed's line format kept exactly."""

from __future__ import annotations

from omc.runtime.engine import narrate
from omc.runtime.engine.plan import Op, Step
from omc.runtime.objects.model import ResourceModel

OM = "/usr/bin/om"
SLICE = "opensvc-svc.svc0-app.0.slice"
PG = "/opensvc.slice/opensvc-svc.svc0.slice/opensvc-svc.svc0-app.0.slice"
START = Step(rid="app#0", unit="opensvc-svc.svc0-app.0.service", op=Op.START)
STOP = Step(rid="app#0", unit="opensvc-svc.svc0-app.0.service", op=Op.STOP)


def app(config: dict[str, object], exec_start: str, exec_stop: str = "") -> ResourceModel:
    return ResourceModel(
        rid="app#0", driver="app.forking", unit=START.unit, config=config, slice=SLICE,
        exec_start=(exec_start,), exec_stop=(exec_stop,) if exec_stop else (),
    )  # fmt: skip


def run_lines(res: ResourceModel, step: Step) -> list[str]:
    lines = narrate.done(step, res, om=OM, pg_seen=set())
    return [line for line in lines if line.startswith("run: ")]


def test_seed_line_is_unchanged() -> None:
    """Plain words print as the seed prints them."""
    res = app({"start": ["touch", "/tmp/f"]}, "touch /tmp/f")
    assert run_lines(res, START) == [f"run: {OM} exec --pg {PG} -- touch /tmp/f"]


def test_percent_and_dollar_show_unescaped_and_shell_quoted() -> None:
    """`%%` and `$$` are unit-file escapes: the line shows what runs, quoted for a shell."""
    res = app({"start": ["printf", "100%n", "$HOME"]}, 'printf "100%%n" "$$HOME"')
    assert run_lines(res, START) == [f"run: {OM} exec --pg {PG} -- printf 100%n '$HOME'"]


def test_shell_command_is_shown_once_quoted() -> None:
    """A shell command is `/bin/sh -c '<text>'`: one wrap, the text quoted as a shell reads it."""
    text = "echo \"a b\" && echo '100%' $HOME"
    res = app(
        {"start": ["/bin/sh", "-c", text]}, '/bin/sh -c "echo \\"a b\\" && echo \'100%%\' $$HOME"'
    )
    assert run_lines(res, START) == [
        f"run: {OM} exec --pg {PG} -- /bin/sh -c 'echo \"a b\" && echo '\"'\"'100%'\"'\"' $HOME'"
    ]


def test_script_actions_show_the_script_and_the_action() -> None:
    """`start = true` runs `<script> start`, `stop = true` `<script> stop`."""
    res = app(
        {"script": "/srv/app", "start": True, "stop": True}, "/srv/app start", "/srv/app stop"
    )
    assert run_lines(res, START) == [f"run: {OM} exec --pg {PG} -- /srv/app start"]
    assert run_lines(res, STOP) == [f"run: {OM} exec --pg {PG} -- /srv/app stop"]


def test_no_start_command_shows_what_the_unit_runs() -> None:
    """An app without `start` (check only) shows the unit's placeholder, as before."""
    res = app({"check": ["/bin/true"]}, "/bin/true")
    assert run_lines(res, START) == [f"run: {OM} exec --pg {PG} -- /bin/true"]
