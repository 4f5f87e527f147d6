import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_importing_camshaft_registry_does_not_import_torch() -> None:
    result = run_python(
        "import camshaft.registry, sys; "
        "heavy = sorted(m for m in ('torch', 'numpy') if m in sys.modules); "
        "assert not heavy, heavy"
    )
    assert result.returncode == 0, result.stderr


def test_public_names_are_importable() -> None:
    result = run_python(
        "from camshaft.registry import "
        "Registry, build_from_cfg, DefaultScope, RegistryError, BuildError, ConfigError"
    )
    assert result.returncode == 0, result.stderr
