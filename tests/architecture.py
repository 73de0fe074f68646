"""The architecture rules of the tree, as data, and the checker that applies them (pure).

``tests/test_architecture.py`` runs :func:`violations` on the real tree, and on small
planted trees to prove each rule can fail. Imports are read from the AST (lazy imports
inside functions count), relative imports are resolved, and ``from pkg import mod``
counts as importing ``pkg.mod``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Top-level folders installed as omc.<folder> (pyproject.toml's package-dir).
PACKAGES = ("grammar", "compiler", "runtime", "unit_templates")
STDLIB_SIDE_EFFECTS = ("subprocess", "socket", "os.system", "fcntl", "threading")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """Files under ``sources`` (path prefixes) must not import modules under ``forbidden``
    (module prefixes), except those under ``allowed``; files under ``exempt`` are skipped."""

    name: str
    sources: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    exempt: tuple[str, ...] = ()

    def applies_to(self, rel: str) -> bool:
        return _under(rel, self.sources) and not _under(rel, self.exempt)

    def breaks(self, module: str) -> bool:
        return _within(module, self.forbidden) and not _within(module, self.allowed)


# The one module allowed to import each external library (one chokepoint per system).
CHOKEPOINTS = {
    "pydbus": "runtime/adapters/systemd.py",
    "gi": "runtime/adapters/systemd.py",
    "pyroute2": "runtime/adapters/netlink.py",
    "etcd3gw": "runtime/adapters/etcd.py",
    # Only the build-time generator imports lark; at run time parse.py uses the
    # stand-alone parser it writes (compiler/_lark_parser.py, no lark import).
    "lark": "compiler/regen_parser.py",
    "jinja2": "compiler/emit.py",
    "ruamel": "runtime/views/yaml.py",
    "xmlrpc": "runtime/collector/sender.py",  # the collector, one module talks to it
}

RULES = (
    Rule(
        name="the compiler never imports the runtime",
        sources=("compiler/", "grammar/", "unit_templates/"),
        forbidden=("omc.runtime",),
    ),
    Rule(
        name="the contract imports nothing of omc but itself and unit syntax (import-light)",
        sources=("compiler/contract/",),
        forbidden=("omc",),
        allowed=("omc.compiler.contract", "omc.compiler.unitsyntax"),
    ),
    Rule(
        name="the runtime uses the compiler only through the contract and the pipeline",
        sources=("runtime/",),
        forbidden=("omc.compiler",),
        allowed=(
            "omc.compiler.contract",
            "omc.compiler.pipeline",
            "omc.compiler.install",
            "omc.compiler.diagnostics",
            "omc.compiler.kvstore",
        ),
    ),
    Rule(
        name="nothing that runs on a node imports the lab (only `om lab`'s dispatch does)",
        sources=("runtime/",),
        forbidden=("omc.runtime.lab",),
        exempt=("runtime/lab/", "runtime/cli.py"),
    ),
    Rule(
        name="the cluster acts on instances only through the engine, never the executor",
        sources=("runtime/cluster/",),
        forbidden=("omc.runtime.lab", "omc.runtime.executor.server", "omc.runtime.objcli"),
    ),
    Rule(
        name="the cluster's decision step is pure: snapshot in, plan out",
        sources=("runtime/cluster/decide.py",),
        forbidden=(
            "omc.runtime.adapters",
            "omc.runtime.engine",
            "omc.runtime.objects",
            "omc.runtime.log",
            *STDLIB_SIDE_EFFECTS,
        ),
    ),
    Rule(
        name="the action planner is pure",
        sources=("runtime/engine/plan.py", "runtime/engine/narrate.py"),
        forbidden=("omc.runtime.adapters", *STDLIB_SIDE_EFFECTS),
    ),
    *(
        Rule(
            name=f"only {owner} imports {library}",
            sources=tuple(f"{p}/" for p in PACKAGES),
            forbidden=(library,),
            exempt=(owner,),
        )
        for library, owner in CHOKEPOINTS.items()
    ),
)


def _under(rel: str, prefixes: Iterable[str]) -> bool:
    return any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in prefixes)


def _within(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def module_name(rel: str) -> str:
    """``runtime/engine/apply.py`` → ``omc.runtime.engine.apply`` (a package: its name)."""
    parts = rel.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["omc", *parts])


def imports(rel: str, source: str) -> Iterator[tuple[int, str]]:
    """Every module a file imports, as absolute names, with its line (relative resolved)."""
    is_package = rel.endswith("__init__.py")
    here = module_name(rel).split(".")
    package = here if is_package else here[:-1]
    for node in ast.walk(ast.parse(source, filename=rel)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def violations(root: Path, rules: Iterable[Rule] = RULES) -> list[str]:
    """``<file>:<line>: <module>: <rule>`` for every import that breaks a rule."""
    rules = tuple(rules)
    found = []
    for package in PACKAGES:
        for file in sorted((root / package).rglob("*.py")):
            rel = file.relative_to(root).as_posix()
            if "__pycache__" in rel or rel.endswith("_lark_parser.py"):
                continue
            for line, module in imports(rel, file.read_text()):
                found += [
                    f"{rel}:{line}: {module}: {rule.name}"
                    for rule in rules
                    if rule.applies_to(rel) and rule.breaks(module)
                ]
    return sorted(set(found))
