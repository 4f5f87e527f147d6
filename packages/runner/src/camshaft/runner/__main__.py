"""``python -m camshaft.runner``: the ``camshaft`` command (see :mod:`camshaft.runner.cli`)."""

import sys

from camshaft.runner.cli import main

if __name__ == "__main__":
    sys.exit(main())
