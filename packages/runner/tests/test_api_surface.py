"""Every public name of camshaft.runner resolves; a name that disappears fails here."""

import subprocess
import sys

import pytest

import camshaft.runner

EXPECTED = {
    "OptimWrapper",
    "AmpOptimWrapper",
    "OptimWrapperDict",
    "DefaultOptimWrapperConstructor",
    "build_optim_wrapper",
    "build_param_schedulers",
    "BaseMetric",
    "Evaluator",
    "DumpResults",
    "MessageHub",
    "MMLogger",
    "print_log",
    "LogProcessor",
    "OPTIMIZERS",
    "OPTIM_WRAPPERS",
    "PARAM_SCHEDULERS",
    "METRICS",
    "HOOKS",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_public_name_resolves(name: str) -> None:
    assert name in camshaft.runner.__all__
    assert getattr(camshaft.runner, name) is not None


def test_unknown_attribute_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        camshaft.runner.no_such_name  # noqa: B018


def test_import_is_lazy() -> None:
    code = (
        "import sys, camshaft.runner; "
        "assert 'camshaft.runner.optim' not in sys.modules; "
        "assert 'camshaft.dist' not in sys.modules; "
        "camshaft.runner.OptimWrapper; "
        "assert 'camshaft.runner.optim' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_name_in_all_resolves() -> None:
    missing = [name for name in camshaft.runner.__all__ if not hasattr(camshaft.runner, name)]
    assert missing == []
