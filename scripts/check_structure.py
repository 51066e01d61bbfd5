#!/usr/bin/env python3
"""The layout's rules, checked (``make lint`` runs this; exit 1 and one line per breach).

- no import circle among the modules of ``messaging/`` (imports inside functions count;
  ``if TYPE_CHECKING:`` imports do not — they never run);
- no private name (``_x``) imported from another module;
- the layers: a package imports only from the packages below it (:data:`LAYERS`);
- pika is imported only where :data:`PIKA_ALLOWED` says;
- at most :data:`TOP_MODULES_MAX` modules at the top of ``messaging/`` besides packages;
- no two modules share a name (migrations and ``management/commands/``, whose names are
  the commands', aside).

Plain ``ast``: nothing is imported or run. ``python scripts/check_structure.py -v`` also
prints the counts.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "messaging"
TOP_MODULES_MAX = 12

#: Each package (or top-level module) → what it may import from ``messaging``. Anything
#: not named here (the top-level modules: conf, exceptions, models, signals, …) is the
#: app's foundation and may be imported by every layer but ``amqp`` (pure rules: it may
#: import only ``exceptions`` and ``conf``).
LAYERS: dict[str, set[str]] = {
    "amqp": {"amqp", "exceptions", "conf"},
    # The broker reads the rows a declaration is made from (Exchange, Binding, the
    # dead-letter exchange's name): models, never publishing/consumer/admin.
    "broker": {
        "amqp",
        "broker",
        "observability",
        "exceptions",
        "conf",
        "models",
        "fields",
        "moved",
    },
    "db": {"db", "amqp", "exceptions", "conf", "models", "fields"},
}
#: The middle layers never import the ways in (the console, the commands, the test kit).
FORBIDDEN: dict[str, set[str]] = {
    middle: {"admin", "management", "testing"}
    for middle in ("publishing", "consumer", "rpc", "observability")
}
#: Who may ``import pika``: the broker package, the consumer's I/O side (its connection and
#: channel), and the types a handler or a test stand-in sees.
PIKA_ALLOWED = ("messaging.broker", "messaging.consumer", "messaging.testing")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        if "migrations" in rel.parts:
            continue
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def is_package(name: str, mods: dict[str, Path]) -> bool:
    return mods[name].name == "__init__.py"


def type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(name: str, path: Path, mods: dict[str, Path]) -> Iterator[tuple[str, str, int]]:
    """(imported module, imported name or '', line) for every import that runs."""
    tree = ast.parse(path.read_text(), str(path))
    skip = type_checking_lines(tree)
    package = name if is_package(name, mods) else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if getattr(node, "lineno", 0) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                yield source, alias.name, node.lineno


def edges(mods: dict[str, Path]) -> dict[str, dict[str, int]]:
    graph: dict[str, dict[str, int]] = defaultdict(dict)
    for name, path in mods.items():
        for source, imported, line in imports(name, path, mods):
            target = f"{source}.{imported}" if f"{source}.{imported}" in mods else source
            if target in mods and target != name:
                graph[name].setdefault(target, line)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def part(name: str) -> str:
    """The package (or top-level module) a module belongs to: messaging.broker.x → broker."""
    pieces = name.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def layer_breaches(graph: dict[str, dict[str, int]], mods: dict[str, Path]) -> Iterator[str]:
    for name, targets in sorted(graph.items()):
        mine = part(name)
        allowed = LAYERS.get(mine)
        for target, line in sorted(targets.items()):
            theirs = part(target)
            if theirs == mine:
                continue
            breach = theirs not in allowed if allowed is not None else False
            if breach or theirs in FORBIDDEN.get(mine, ()):
                yield f"{mods[name].relative_to(ROOT)}:{line}: {mine}/ imports {target}"


def private_imports(mods: dict[str, Path]) -> Iterator[str]:
    for name, path in mods.items():
        for source, imported, line in imports(name, path, mods):
            if (
                imported.startswith("_")
                and not imported.startswith("__")
                and source.startswith(PACKAGE)
                and f"{source}.{imported}" not in mods
                and source != name
            ):
                yield f"{path.relative_to(ROOT)}:{line}: imports private {imported} from {source}"


def pika_imports(mods: dict[str, Path]) -> Iterator[str]:
    for name, path in mods.items():
        if name.startswith(PIKA_ALLOWED):
            continue
        for source, _imported, line in imports(name, path, mods):
            if source == "pika" or source.startswith("pika."):
                yield f"{path.relative_to(ROOT)}:{line}: imports pika outside {PIKA_ALLOWED}"


def shared_names(mods: dict[str, Path]) -> Iterator[str]:
    seen: dict[str, list[str]] = defaultdict(list)
    for name, path in mods.items():
        if path.name == "__init__.py" or ".management.commands." in name:
            continue
        seen[name.rpartition(".")[2]].append(name)
    for short, names in sorted(seen.items()):
        if len(names) > 1:
            yield f"module name {short!r} used {len(names)} times: {', '.join(names)}"


def top_modules(mods: dict[str, Path]) -> list[str]:
    return [n for n, p in mods.items() if n.count(".") == 1 and p.name != "__init__.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print the counts too")
    verbose = parser.parse_args().verbose
    mods = modules()
    graph = edges(mods)
    problems: list[str] = []
    for component in cycles(graph):
        problems.append("import circle: " + " → ".join(component))
    problems.extend(private_imports(mods))
    problems.extend(layer_breaches(graph, mods))
    problems.extend(pika_imports(mods))
    problems.extend(shared_names(mods))
    top = top_modules(mods)
    if len(top) > TOP_MODULES_MAX:
        problems.append(f"{len(top)} modules at the top of messaging/ (at most {TOP_MODULES_MAX})")
    for problem in problems:
        print(problem)
    if verbose:
        print(
            f"{len(mods)} modules, {sum(map(len, graph.values()))} imports between them, "
            f"{len(top)} top-level modules: {', '.join(sorted(top))}"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
