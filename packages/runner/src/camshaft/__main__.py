"""``python -m camshaft``: the ``camshaft`` command (see :mod:`camshaft.runner.cli`).

``camshaft`` is a PEP 420 namespace package; ``python -m`` runs this module of it
all the same. It lives in the camshaft-runner distribution, which owns the command.
"""

import sys

from camshaft.runner.cli import main

if __name__ == "__main__":
    sys.exit(main())
