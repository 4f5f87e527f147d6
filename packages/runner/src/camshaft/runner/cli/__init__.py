"""camshaft.runner.cli — the ``camshaft`` command line.

``camshaft train CONFIG``, ``camshaft test CONFIG --checkpoint PATH`` and
``camshaft plot WORK_DIR``; the console script ``camshaft``, ``python -m camshaft``
and ``python -m camshaft.runner`` all call :func:`main`. ``camshaft --help`` lists
the options; input errors exit with code 2 and one line on stderr
(``CAMSHAFT_DEBUG=1`` shows their traceback).

Example:
    >>> from camshaft.runner.cli import main
    >>> main(['train', 'configs/toy.py', '--work-dir', 'work_dirs/toy'])  # doctest: +SKIP
    0
"""

from camshaft.runner.cli._main import main

__all__ = ["main"]
