"""camshaft.runner.visualization — where training curves, configs and images go.

* :class:`Visualizer`: forwards scalars, the config and images to its backends; named
  instances as in MMEngine (``Visualizer.get_instance(name)``);
* :class:`BaseVisBackend`, :class:`LocalVisBackend` (JSON lines, config, PNG images)
  and :class:`TensorboardVisBackend` (optional ``tensorboard``), all in
  :data:`camshaft.runner.VISBACKENDS`;
* :func:`progress_wanted` and :class:`EpochProgressBar`: a live terminal progress bar
  (optional ``rich``);
* :func:`plot_curves`: a PNG of the curves of the newest run (optional ``matplotlib``).

Importing this package is cheap: rich, matplotlib, tensorboard, torch and numpy are
imported only by the calls that need them.

Example:
    >>> import tempfile
    >>> from camshaft.runner.visualization import Visualizer
    >>> vis = Visualizer(vis_backends=[dict(type='LocalVisBackend')],
    ...                  save_dir=tempfile.mkdtemp())
    >>> vis.add_scalars({'loss': 0.5}, step=1)  # -> <save_dir>/scalars.json
    >>> vis.close()
"""

from camshaft.runner.visualization._backends import (
    BaseVisBackend,
    LocalVisBackend,
    TensorboardVisBackend,
)
from camshaft.runner.visualization._plot import plot_curves
from camshaft.runner.visualization._progress import EpochProgressBar, progress_wanted
from camshaft.runner.visualization._visualizer import Visualizer

__all__ = [
    "Visualizer",
    "BaseVisBackend",
    "LocalVisBackend",
    "TensorboardVisBackend",
    "EpochProgressBar",
    "progress_wanted",
    "plot_curves",
]
