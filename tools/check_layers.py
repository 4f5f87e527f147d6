#!/usr/bin/env python3
"""Enforce camshaft's layering: a package imports only packages on lower floors.

Usage: ``python tools/check_layers.py [REPO_ROOT]`` (run by ``nox -s lint``).

Rules, from DESIGN.md:

* floors: registry 0, init 1, model 2, preprocess 3, dist 3, runner 4; an import of
  ``camshaft.<pkg>`` from a package on the same floor (sideways) or a lower one
  (upward) is a violation;
* a package imports only camshaft packages it declares in its ``pyproject.toml``
  (otherwise installing it alone breaks);
* ``camshaft`` is a PEP 420 namespace package, so no ``camshaft/__init__.py`` may exist;
* camshaft-registry imports nothing outside the standard library at module level.

Exit status 1 when any rule is broken; every violation is printed with file and line.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import tomllib

FLOORS = {"registry": 0, "init": 1, "model": 2, "preprocess": 3, "dist": 3, "runner": 4}


def _camshaft_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Yield (line, package) for every import of ``camshaft.<package>``."""
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "camshaft":
                modules = [f"camshaft.{alias.name}" for alias in node.names]
            else:
                modules = [node.module]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "camshaft" and len(parts) > 1:
                yield node.lineno, parts[1]


def _module_level_third_party(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Yield (line, top-level name) for imports executed at import time, outside stdlib."""
    stdlib = sys.stdlib_module_names
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                break
            names: list[str] = []
            if isinstance(sub, ast.Import):
                names = [alias.name for alias in sub.names]
            elif isinstance(sub, ast.ImportFrom) and sub.level == 0 and sub.module:
                names = [sub.module]
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib and top != "camshaft" and top != "__future__":
                    yield sub.lineno, top


def _declared_camshaft_deps(pyproject: Path) -> set[str]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    deps = data.get("project", {}).get("dependencies", [])
    found = set()
    for dep in deps:
        match = re.match(r"camshaft-([a-z]+)", dep)
        if match:
            found.add(match.group(1))
    return found


def check(root: Path) -> list[str]:
    """Return one message per violation found under ``root/packages``."""
    problems: list[str] = []
    packages = root / "packages"
    if not packages.is_dir():
        return [f"{root}: no packages/ folder"]
    for pkg_dir in sorted(p for p in packages.iterdir() if p.is_dir()):
        pkg = pkg_dir.name
        if pkg not in FLOORS:
            problems.append(f"{pkg_dir}: not a package of the design ({', '.join(FLOORS)})")
            continue
        declared = _declared_camshaft_deps(pkg_dir / "pyproject.toml")
        for ns_init in pkg_dir.glob("src/camshaft/__init__.py"):
            problems.append(f"{ns_init}: camshaft is a PEP 420 namespace package; delete this file")
        for path in sorted((pkg_dir / "src").rglob("*.py")):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            except SyntaxError as exc:
                problems.append(f"{path}: cannot parse ({exc})")
                continue
            rel = path.relative_to(root)
            for line, target in _camshaft_imports(tree):
                if target == pkg:
                    continue
                if target not in FLOORS:
                    problems.append(f"{rel}:{line}: imports camshaft.{target}, not a package")
                elif FLOORS[target] >= FLOORS[pkg]:
                    way = "sideways" if FLOORS[target] == FLOORS[pkg] else "upward"
                    problems.append(
                        f"{rel}:{line}: camshaft.{pkg} (floor {FLOORS[pkg]}) imports "
                        f"camshaft.{target} (floor {FLOORS[target]}): {way}"
                    )
                elif target not in declared:
                    problems.append(
                        f"{rel}:{line}: imports camshaft.{target}, which "
                        f"{pkg_dir / 'pyproject.toml'} does not declare"
                    )
            if pkg == "registry":
                for line, name in _module_level_third_party(tree):
                    problems.append(
                        f"{rel}:{line}: camshaft.registry imports {name!r} at module level; "
                        "it may use only the standard library (import optional extras lazily)"
                    )
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else ".").resolve()
    problems = check(root)
    for line in problems:
        print(line)
    print(f"layers: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
