"""The package's layers import only downward, and no import anywhere closes a cycle.

Read from the source with ``ast``: every ``import`` and ``from ... import`` of the package,
at a module's top or inside a function (an import put in a function to dodge a cycle
is a cycle all the same), and the parent packages each import runs first.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sklearn_cirrus"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# bottom first; the parts of a layer sit side by side and do not import each other,
# except the public faces at the top, which only must not form a cycle
LAYERS = [
    (
        "foundations",
        ["exceptions", "_extras", "_compat", "_compiled", "platforms", "namespaces", "credentials"],
    ),
    ("tables, data, executors", ["model_table", "data", "executors"]),
    ("kernels and stores", ["kernels", "store"]),
    ("runtime", ["runtime"]),
    ("public faces", None),  # every other module: estimators, searches, datasets, CLI...
]


def _module_names() -> dict[str, Path]:
    """Dotted name -> file, for the package's Python and Cython modules."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")) + sorted(PACKAGE.rglob("*.pyx")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


MODULES = _module_names()


def _imported(module: str, path: Path) -> set[str]:
    """The package's modules that importing ``module`` imports, directly."""
    if path.suffix != ".py":
        return set()
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target in MODULES and target != module:
                found.add(target)
                # importing a.b.c runs a and a.b first: the packages the module is not in
                parents = target.split(".")
                for n in range(2, len(parents)):
                    parent = ".".join(parents[:n])
                    if module != parent and not module.startswith(parent + "."):
                        found.add(parent)
    return found


IMPORTS = {module: _imported(module, path) for module, path in MODULES.items()}


def _part(module: str) -> tuple[int, str]:
    """(layer index, part name) of a module of the package."""
    top = module.split(".")[1] if "." in module else ""
    for index, (_, parts) in enumerate(LAYERS):
        if parts is not None and top in parts:
            return index, top
    return len(LAYERS) - 1, top


def test_every_module_is_placed_and_the_layers_name_real_parts():
    tops = {module.split(".")[1] for module in MODULES if "." in module}
    for _, parts in LAYERS:
        for part in parts or []:
            assert part in tops, f"LAYERS names {part!r}, which is not in the package"


def test_layers_import_only_downward():
    upward = []
    for module, targets in IMPORTS.items():
        (layer, part) = _part(module)
        for target in targets:
            (target_layer, target_part) = _part(target)
            public = layer == len(LAYERS) - 1 == target_layer
            if target_part != part and not public and target_layer >= layer:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that do not go down a layer:\n" + "\n".join(sorted(upward))


def _cycle() -> list[str] | None:
    """One cycle of imports, if any (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(IMPORTS[module]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[module] = "done"
        stack.pop()
        return None

    for module in sorted(MODULES):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_import_closes_a_cycle():
    cycle = _cycle()
    assert cycle is None, "a cycle of imports: " + " -> ".join(cycle)


def test_the_checks_see_an_upward_import_and_a_cycle(monkeypatch):
    # the checks themselves, on a made-up import: the store reaching up into the runtime
    monkeypatch.setitem(
        IMPORTS,
        "sklearn_cirrus.store.base",
        IMPORTS["sklearn_cirrus.store.base"] | {"sklearn_cirrus.runtime.driver"},
    )
    assert _cycle() is not None
    try:
        test_layers_import_only_downward()
    except AssertionError as error:
        assert "sklearn_cirrus.store.base -> sklearn_cirrus.runtime.driver" in str(error)
    else:
        raise AssertionError("the upward import went unseen")


PUBLIC_FACES = "estimators, searches, datasets, preprocessing, dashboard, CLI: the rest"


def layer_picture() -> str:
    """The picture of the layers in docs/architecture.md, top first."""
    rows = []
    for name, parts in reversed(LAYERS):
        shown = (
            PUBLIC_FACES
            if parts is None
            else "  ".join(f"{p}/" if (PACKAGE / p).is_dir() else f"{p}.py" for p in parts)
        )
        rows.append(f"{name:<26}{shown}")
    return "\n".join(rows)


def test_the_architecture_page_draws_these_layers():
    page = ARCHITECTURE.read_text()
    block = re.search(r"<!-- layers -->\n```\n(.*?)```", page, re.DOTALL)
    assert block is not None, "docs/architecture.md has no block marked <!-- layers -->"
    assert block.group(1).rstrip("\n") == layer_picture(), (
        "docs/architecture.md's picture of the layers differs from tests/test_layers.py's "
        "LAYERS; its block should read:\n" + layer_picture()
    )
