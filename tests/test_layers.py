"""The package's layers point one way: no import circle, and no lower layer reaching up.

Imports inside functions count: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import avscene

PACKAGE = Path(avscene.__file__).parent

#: What each lower layer must never import (the layers above it), by module-name prefix.
FORBIDDEN = {
    "avscene.constants": ("avscene.",),
    "avscene.files": ("avscene.",),
    "avscene.media": ("avscene.models", "avscene.data", "avscene.infer", "avscene.train", "avscene.evaluate",
                      "avscene.metrics", "avscene.synth", "avscene.report", "avscene.cli", "avscene.demo"),
    "avscene.audio": ("avscene.models", "avscene.data", "avscene.infer", "avscene.train", "avscene.evaluate",
                      "avscene.synth", "avscene.report", "avscene.cli", "avscene.demo"),
    "avscene.models": ("avscene.media", "avscene.data", "avscene.infer", "avscene.train", "avscene.evaluate",
                       "avscene.metrics", "avscene.synth", "avscene.report", "avscene.release", "avscene.cli",
                       "avscene.demo"),
    "avscene.checkpoints": ("avscene.train", "avscene.infer", "avscene.evaluate", "avscene.metrics", "avscene.data"),
    "avscene.metrics": ("avscene.train", "avscene.infer", "avscene.evaluate", "avscene.checkpoints", "avscene.cli",
                        "avscene.demo"),
    "avscene.data": ("avscene.infer", "avscene.train", "avscene.evaluate", "avscene.report", "avscene.cli",
                     "avscene.demo"),
    "avscene.infer": ("avscene.train", "avscene.evaluate", "avscene.cli", "avscene.demo"),
    "avscene.train": ("avscene.infer", "avscene.evaluate", "avscene.cli", "avscene.demo"),
    "avscene.release": ("avscene.infer", "avscene.train", "avscene.evaluate", "avscene.cli", "avscene.demo"),
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def _imports(module: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The avscene modules ``module`` imports anywhere in its file (package ``__init__``s left out)."""
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".")
            if node.level:
                base = base[: len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
                head = ".".join(base + ([node.module] if node.module else []))
            else:
                head = node.module or ""
            names = [head] + [f"{head}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in mods:
                name = name.rpartition(".")[0]
            if name and name != module and name.startswith("avscene") and mods[name].name != "__init__.py":
                deps.add(name)
    return deps


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, mods) for m, p in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        path.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_no_import_circle():
    cycle = _cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_lower_layers_do_not_import_higher_ones():
    bad = [f"{m} imports {d}" for m, deps in _graph().items() for layer, above in FORBIDDEN.items()
           if m == layer or m.startswith(layer + ".") for d in sorted(deps) if d.startswith(above)]
    assert not bad, "\n".join(bad)


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
