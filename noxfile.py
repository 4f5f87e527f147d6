"""The camshaft test matrix.

``nox`` (no arguments) runs lint, typecheck, tests and standalone: what CI runs.
``nox -s gpu`` runs only the tests marked ``gpu`` and refuses to start without CUDA.
``nox -s bench`` runs the benchmarks in ``bench/`` and prints one JSON line each.

Every environment pins torch through ``constraints.txt`` so a plain ``torch>=2.4``
requirement never pulls a multi-GB CUDA build on a CPU machine.
"""

from __future__ import annotations

import re
from pathlib import Path

import nox
import tomllib

ROOT = Path(__file__).parent
PACKAGES = ["registry", "init", "model", "preprocess", "dist", "runner"]
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))

nox.options.sessions = ["lint", "typecheck", "tests", "standalone"]
nox.options.error_on_external_run = True


def _pyproject(package: str) -> dict:
    return tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())


def _camshaft_closure(package: str) -> list[str]:
    """The package and every camshaft package it declares, transitively, lowest first."""
    seen: list[str] = []

    def visit(name: str) -> None:
        for dep in _pyproject(name)["project"].get("dependencies", []):
            match = re.match(r"camshaft-([a-z]+)", dep)
            if match and match.group(1) not in seen:
                visit(match.group(1))
        if name not in seen:
            seen.append(name)

    visit(package)
    return seen


def _with_extras(package: str) -> str:
    extras = sorted(_pyproject(package)["project"].get("optional-dependencies", {}))
    path = str(ROOT / "packages" / package)
    return f"{path}[{','.join(extras)}]" if extras else path


def _install_editable_all(session: nox.Session) -> None:
    args: list[str] = []
    for package in PACKAGES:
        args += ["-e", _with_extras(package)]
    session.install(*CONSTRAINTS, "-r", str(ROOT / "requirements-test.txt"), *args)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format) and the layering check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", "tools/check_layers.py", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Mypy over every package's source (no untyped definitions)."""
    _install_editable_all(session)
    session.install("mypy>=1.10", "types-PyYAML")
    targets: list[str] = []
    for package in PACKAGES:
        targets += ["-p", f"camshaft.{package}"]
    session.run("mypy", *targets)


@nox.session
def tests(session: nox.Session) -> None:
    """Every package's tests, all packages installed editable, GPU tests excluded."""
    _install_editable_all(session)
    session.run("pytest", "-m", "not gpu", *session.posargs)


@nox.session
@nox.parametrize("package", PACKAGES)
def standalone(session: nox.Session, package: str) -> None:
    """Install one package non-editable with only what it declares, import it all, test it."""
    closure = _camshaft_closure(package)
    session.install(
        *CONSTRAINTS,
        "-r",
        str(ROOT / "requirements-test.txt"),
        *[_with_extras(name) for name in closure],
    )
    # Run from a temporary directory so the source tree is not importable by accident.
    tmp = session.create_tmp()
    with session.chdir(tmp):
        session.run("python", str(ROOT / "tools" / "import_all.py"), package)
    session.run(
        "pytest",
        "-m",
        "not gpu",
        "-p",
        "no:cacheprovider",
        str(ROOT / "packages" / package / "tests"),
        *session.posargs,
    )


@nox.session
def gpu(session: nox.Session) -> None:
    """Only the tests marked ``gpu``; fails at once when CUDA is absent."""
    _install_editable_all(session)
    has_cuda = session.run(
        "python", "-c", "import torch; print(torch.cuda.is_available())", silent=True
    )
    if not has_cuda or has_cuda.strip() != "True":
        session.error(
            "nox -s gpu needs a CUDA device and a CUDA build of torch; "
            "torch.cuda.is_available() is False here. On a GPU machine without nox, run "
            "`bash tools/gpu_tests.sh` with the interpreter's own torch."
        )
    session.run("pytest", "-m", "gpu", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The README's first command: train, test and plot the digits example end to end."""
    _install_editable_all(session)
    session.install(*CONSTRAINTS, "scikit-learn>=1.3")
    work_dir = Path(session.posargs[0] if session.posargs else "work_dirs/digits")
    config = str(ROOT / "examples" / "digits" / "config.py")
    env = {"PYTHONPATH": str(ROOT / "examples" / "digits")}
    session.run("camshaft", "train", config, "--work-dir", str(work_dir), env=env)
    best = sorted(work_dir.glob("best_*.pth"), key=lambda p: p.stat().st_mtime)
    if not best:
        session.error(f"training wrote no best checkpoint in {work_dir}")
    session.run(
        "camshaft", "test", config, "--checkpoint", str(best[-1]), "--work-dir", str(work_dir),
        env=env,
    )  # fmt: skip
    session.run(
        "camshaft", "plot", str(work_dir), "--keys", "loss", "accuracy",
        "--out", str(work_dir / "curves.png"),
    )  # fmt: skip


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark in bench/ (or those named after ``--``), then one table of them all."""
    _install_editable_all(session)
    session.install(*CONSTRAINTS, "mmengine==0.10.7")  # the baseline; only in this session
    scripts = session.posargs or sorted(str(p) for p in (ROOT / "bench").glob("[!_]*.py"))
    lines = []
    for script in scripts:
        output = session.run("python", script, silent=True) or ""
        json_lines = [line for line in output.splitlines() if line.startswith("{")]
        if not json_lines:
            session.error(f"{script} printed no JSON line:\n{output[-2000:]}")
        print(json_lines[-1])
        lines.append(json_lines[-1])
    collected = Path(session.create_tmp()) / "bench_lines.jsonl"
    collected.write_text("\n".join(lines) + "\n")
    session.run("python", str(ROOT / "bench" / "_table.py"), str(collected))
