"""``omc``: compile OpenSVC configs into systemd units (and the generator entry point).

Commands::

    omc compile svc.conf… [-o DIR] [--node N] [--om PATH] [--dry-run] [--format text|json]
    omc check svc.conf… [--node N] [--format text|json]
    omc diff svc.conf… -o DIR [--node N] [--om PATH]
    omc keywords [DRIVER]
    omc generator NORMAL_DIR [EARLY_DIR LATE_DIR]     (also: argv[0] = omc-generator)

Output discipline: data (units, diffs, the change report, JSON) on stdout;
diagnostics in text form on stderr. Every file is compiled and every error of
every file is reported before the exit status (:mod:`.exitcodes`) is chosen.
A file with errors installs nothing, so its previous units stay in place.

Start-up matters (``omc`` runs from scripts and as a generator at boot): only
``argparse`` is imported up front; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .contract.units import UNIT_DIR
from .exitcodes import ExitStatus

if TYPE_CHECKING:
    from .diagnostics import Diagnostic
    from .pipeline import Build

GENERATOR_NAMES = frozenset(("omc-generator", "opensvc-generator"))


class UsageError(Exception):
    """A bad command line detected after argparse (mapped to ``ExitStatus.USAGE``)."""


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, declared once (also what ``--help`` prints)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser = argparse.ArgumentParser(
        prog="omc",
        description="Compile OpenSVC service configs into systemd units.",
        epilog="exit status: 0 ok, 1 config errors, 2 usage, 3 I/O error, 4 diff found "
        "differences, 70 internal error",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def files_command(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        cmd.add_argument("files", nargs="+", type=Path, metavar="CONFIG", help="config files")
        cmd.add_argument("--node", default=None, help="evaluate for this node (default: hostname)")
        cmd.add_argument(
            "--format", choices=("text", "json"), default="text", help="diagnostics format"
        )
        cmd.add_argument("--cluster-name", default=None, help="value of {clustername}")
        return cmd

    def output_options(cmd: argparse.ArgumentParser, *, required: bool) -> None:
        cmd.add_argument(
            "-o", "--output", type=Path, metavar="DIR", required=required,
            default=None if required else UNIT_DIR,
            help="unit directory" + ("" if required else f" (default: {UNIT_DIR})"),
        )  # fmt: skip
        cmd.add_argument("--om", default=None, help="absolute path of om in ExecStart lines")

    compile_cmd = files_command("compile", "compile configs and install their units")
    output_options(compile_cmd, required=False)
    compile_cmd.add_argument("--dry-run", action="store_true", help="print units, write nothing")
    compile_cmd.add_argument("-q", "--quiet", action="store_true", help="no change report")
    files_command("check", "validate configs only (exit 1 on errors)")
    diff_cmd = files_command("diff", "unified diff of compiled units against installed ones")
    output_options(diff_cmd, required=True)
    keywords_cmd = sub.add_parser(
        "keywords", help="print the keyword documentation", parents=[common]
    )
    keywords_cmd.add_argument("driver", nargs="?", help="a group or driver, e.g. ip or app.forking")
    gen = sub.add_parser("generator", help="run as a systemd generator", parents=[common])
    gen.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="normal [early late]")
    return parser


@dataclass(slots=True)
class Run:
    """One invocation's shared settings and outputs (kept out of globals)."""

    node: str
    om: str
    cluster: dict[str, str]
    fmt: str = "text"
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    statuses: list[ExitStatus] = field(default_factory=list)
    private: set[Path] = field(
        default_factory=set
    )  # configs not world-readable: nor are their units

    def compile(self, file: Path) -> Build | None:
        """Read, compile and emit one file, reporting its diagnostics; None when unreadable."""
        from .contract.node import ConfigFileError, etc_dir, path_from_location, read_config_file
        from .pipeline import build

        try:
            config = read_config_file(file)
        except ConfigFileError as exc:
            self.fail(ExitStatus.IO_ERROR, str(exc))
            return None
        text = config.text
        if config.private:
            self.private.add(file)
        result = build(
            text,
            filename=str(file),
            node=self.node,
            om=self.om,
            path=path_from_location(file),
            cluster=self.cluster,
            stores=etc_dir(),
        )
        self.report(result.diagnostics, text)
        if not result.ok:
            self.statuses.append(ExitStatus.CONFIG_ERROR)
        return result

    def report(self, diags: Sequence[Diagnostic], source: str) -> None:
        if self.fmt == "json":
            self.diagnostics.extend(diags)
        elif diags:
            from .diagnostics import render_text

            self.stderr.write(render_text(diags, source))

    def fail(self, status: ExitStatus, message: str) -> None:
        self.statuses.append(status)
        self.stderr.write(f"omc: error: {message}\n")

    def finish(self) -> ExitStatus:
        """Flush JSON diagnostics; the worst status of all files."""
        if self.fmt == "json":
            import json

            from .diagnostics import to_json

            json.dump(to_json(self.diagnostics), self.stdout, indent=2)
            self.stdout.write("\n")
        return ExitStatus.worst(*self.statuses)


def _make_run(args: argparse.Namespace) -> Run:
    from .contract.node import cluster_settings, node_name, om_path

    om = getattr(args, "om", None) or om_path()
    if not Path(om).is_absolute():
        raise UsageError(f"--om must be an absolute path, got {om!r}")
    cluster = cluster_settings()
    if args.cluster_name:
        cluster["clustername"] = args.cluster_name
    return Run(node=args.node or node_name(), om=om, cluster=cluster, fmt=args.format)


def cmd_check(args: argparse.Namespace) -> ExitStatus:
    run = _make_run(args)
    for file in args.files:
        run.compile(file)
    return run.finish()


def cmd_compile(args: argparse.Namespace) -> ExitStatus:
    if args.dry_run and args.format == "json":
        raise UsageError("--dry-run prints units as text; drop --format json")
    run = _make_run(args)
    results = [(file, run.compile(file)) for file in args.files]
    if args.dry_run:
        for _, result in results:
            if result is not None and result.ok:
                _print_units(result.units, run.stdout)
        return run.finish()
    from .install import InstallError, install, scan

    owned: dict[str, dict[str, str]] | None = None
    for file, result in results:
        if result is None or not result.ok:
            continue  # nothing written: the last good units stay in place
        units = result.units
        try:
            owned = scan(args.output) if owned is None else owned
            report = install(
                units,
                directory=args.output,
                object_path=str(result.path),
                installed=owned.get(str(result.path), {}),
                private=file in run.private,
            )
        except InstallError as exc:
            run.fail(ExitStatus.IO_ERROR, f"{file}: {exc}")
            continue
        out = run.stderr if args.format == "json" else run.stdout
        if not args.quiet:
            for change in report.changes:
                out.write(f"{change.change:<9} {args.output / change.unit}\n")
    return run.finish()


def cmd_diff(args: argparse.Namespace) -> ExitStatus:
    from .install import InstallError, scan, unit_diff, with_unowned

    run = _make_run(args)
    try:
        owned = scan(args.output)
    except InstallError as exc:
        run.fail(ExitStatus.IO_ERROR, str(exc))
        return run.finish()
    for file in args.files:
        result = run.compile(file)
        if result is None or not result.ok:
            continue
        installed = with_unowned(args.output, result.units, owned.get(str(result.path), {}))
        text = unit_diff(result.units, installed, directory=args.output)
        if text:
            run.stdout.write(text)
            run.statuses.append(ExitStatus.DIFFERS)
    return run.finish()


def cmd_keywords(args: argparse.Namespace) -> ExitStatus:
    from .keywords import keyword_doc

    try:
        text = keyword_doc(args.driver)
    except (KeyError, ValueError) as exc:
        raise UsageError(
            str(exc.args[0]) if exc.args else f"unknown driver {args.driver!r}"
        ) from exc
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return ExitStatus.OK


def cmd_generator(args: argparse.Namespace) -> ExitStatus:
    from .generator import main as generator_main

    return generator_main([str(d) for d in args.dirs])


def _print_units(units: Mapping[str, str], out: TextIO) -> None:
    for name, text in units.items():
        out.write(f"# --- {name} ---\n{text}")
        if not text.endswith("\n"):
            out.write("\n")


COMMANDS = {
    "check": cmd_check,
    "compile": cmd_compile,
    "diff": cmd_diff,
    "keywords": cmd_keywords,
    "generator": cmd_generator,
}


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Entry point of ``omc`` (and of ``omc-generator`` when invoked under that name)."""
    prog = prog if prog is not None else Path(sys.argv[0]).name
    args_list = list(sys.argv[1:] if argv is None else argv)
    if prog in GENERATOR_NAMES:
        args_list = ["generator", *args_list]
    debug = "--debug" in args_list
    try:
        args = build_parser().parse_args(args_list)
        return int(COMMANDS[args.command](args))
    except UsageError as exc:
        sys.stderr.write(f"omc: error: {exc}\n")
        return ExitStatus.USAGE
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else ExitStatus.USAGE
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        return ExitStatus.OK  # `omc compile --dry-run … | head` is fine
    except Exception as exc:
        if debug:
            import traceback

            traceback.print_exc()
        else:
            sys.stderr.write(
                f"omc: internal error: {type(exc).__name__}: {exc} (--debug shows the traceback)\n"
            )
        return ExitStatus.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
