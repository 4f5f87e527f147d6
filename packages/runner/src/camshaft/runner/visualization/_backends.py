"""Visualization backends: where the :class:`Visualizer` writes scalars, configs and images.

* :class:`LocalVisBackend` appends one JSON object per :meth:`~LocalVisBackend.add_scalars`
  call to ``<save_dir>/scalars.json`` (JSON lines, flushed line by line, so a crash
  loses at most the line being written) and writes the config to ``<save_dir>/config.py``.
* :class:`TensorboardVisBackend` writes TensorBoard event files (the optional
  ``tensorboard`` package, ``pip install "camshaft-runner[tensorboard]"``).

Both are registered in :data:`camshaft.runner.VISBACKENDS`, so a config names them as
``dict(type='LocalVisBackend')``. Nothing heavy is imported here: torch, numpy,
matplotlib and tensorboard are used only when a call needs them, and a backend creates
its ``save_dir`` on its first write, not when it is built.
"""

from __future__ import annotations

import json
import os
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from camshaft.runner._registry import VISBACKENDS
from camshaft.runner.visualization._scalars import (
    check_step,
    config_text,
    scalars_to_numbers,
    write_atomic,
)

if TYPE_CHECKING:
    from torch import Tensor
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["BaseVisBackend", "LocalVisBackend", "TensorboardVisBackend"]

# json.dumps(..., ensure_ascii=False) would build an encoder for every line.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False)
# '"<key>": ' as _JSON_ENCODER writes it, by key.
_JSON_KEYS: dict[str, str] = {}
_INF = float("inf")


def _json_line(record: dict[str, float | int]) -> str:
    """``_JSON_ENCODER.encode(record)`` and a newline, for a dict of str -> float or int.

    Written here, without the encoder's calls: numbers as ``json`` writes them (the
    ``repr`` of ``float`` and ``int``, ``NaN``/``Infinity`` for the others), keys as
    the encoder wrote them the first time.
    """
    line = ""
    for key, value in record.items():
        try:
            prefix = _JSON_KEYS[key]
        except KeyError:
            prefix = _JSON_KEYS[key] = f"{_JSON_ENCODER.encode(key)}: "
        kind = type(value)
        if kind is float:
            if value != value:
                text = "NaN"
            elif value == _INF:
                text = "Infinity"
            elif value == -_INF:
                text = "-Infinity"
            else:
                text = f"{value!r}"
        elif kind is int:
            text = f"{value!r}"
        else:  # a subclass: the encoder's own path
            text = _JSON_ENCODER.encode(value)
        line += f", {prefix}{text}"
    return f"{{{line[2:]}}}\n"


class BaseVisBackend(metaclass=ABCMeta):
    """Base class of visualization backends.

    A backend receives what the :class:`~camshaft.runner.visualization.Visualizer`
    forwards to it. Subclasses implement :meth:`add_scalars` and :meth:`add_config`;
    :meth:`add_image` is optional (the Visualizer sends images only to backends that
    override it) and :meth:`close` releases files or writers. Register a subclass
    with ``@VISBACKENDS.register_module()`` to name it in configs.

    Args:
        save_dir: The directory the backend writes into. It is created on the first
            write, not here.

    Raises:
        ValueError: ``save_dir`` is None.
        TypeError: ``save_dir`` is not a str or ``os.PathLike``.

    Example:
        >>> class PrintBackend(BaseVisBackend):
        ...     def add_scalars(self, scalar_dict, step=0):
        ...         print(step, dict(scalar_dict))
        ...     def add_config(self, config):
        ...         pass
        >>> PrintBackend('unused_dir').add_scalar('loss', 0.5, step=3)
        3 {'loss': 0.5}
    """

    def __init__(self, save_dir: str | os.PathLike[str]) -> None:
        if save_dir is None:
            raise ValueError(
                f"{type(self).__name__} needs a `save_dir` (the directory it writes into), "
                "got None. Pass save_dir=..., or build it through a Visualizer that has a "
                "save_dir (the runner gives its log directory)."
            )
        if not isinstance(save_dir, (str, os.PathLike)):
            raise TypeError(
                f"{type(self).__name__}: `save_dir` must be a str or os.PathLike, "
                f"got {type(save_dir).__name__}: {save_dir!r}"
            )
        self._save_dir = os.fspath(save_dir)

    @property
    def save_dir(self) -> str:
        """The directory this backend writes into."""
        return self._save_dir

    @property
    def experiment(self) -> Any:
        """The object that does the writing (MMEngine's name); the backend itself here."""
        return self

    @abstractmethod
    def add_scalars(self, scalar_dict: Mapping[str, float | int | Tensor], step: int = 0) -> None:
        """Record several scalars at ``step``.

        Args:
            scalar_dict: Name -> number, 0-d tensor or numpy scalar.
            step: The global step (iteration or epoch) they belong to.
        """

    def add_scalar(self, name: str, value: float | int | Tensor, step: int = 0) -> None:
        """Record one scalar; the same as ``add_scalars({name: value}, step)``.

        Args:
            name: The scalar's name.
            value: A number, 0-d tensor or numpy scalar.
            step: The global step it belongs to.
        """
        self.add_scalars({name: value}, step)

    @abstractmethod
    def add_config(self, config: Any) -> None:
        """Record the experiment's config (a ``Config``, a dict, or anything printable).

        Args:
            config: The config; ``config.pretty_text`` is used when it has one.
        """

    def add_image(self, name: str, image: Any, step: int = 0) -> None:
        """Record an RGB image (``H x W x 3`` uint8 array). Not every backend can.

        Args:
            name: The image's name.
            image: The image.
            step: The global step it belongs to.

        Raises:
            NotImplementedError: This backend does not store images.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support add_image()")

    def close(self) -> None:  # noqa: B027 - a no-op default, not an abstract method
        """Release files and writers; the default does nothing. Safe to call twice."""


@VISBACKENDS.register_module()
class LocalVisBackend(BaseVisBackend):
    """Write scalars as JSON lines, the config as text and images as PNG under ``save_dir``.

    Each :meth:`add_scalars` call appends one line, ``{"<name>": value, ..., "step":
    step}`` (a ``"step"`` already in the dict is kept, as in MMEngine), and flushes it.
    Values are converted to Python numbers first: 0-d and one-element tensors and
    numpy scalars become ``float``/``int``; anything else raises ``TypeError`` before
    anything is written. NaN and infinity are written as ``NaN``/``Infinity``, which
    Python's ``json`` reads back.

    Args:
        save_dir: The directory to write into (created on the first write).
        img_save_dir: Sub-directory of ``save_dir`` for images.
        config_save_file: File name, under ``save_dir``, of the config.
        scalar_save_file: File name, under ``save_dir``, of the scalars (``.json``).

    Raises:
        ValueError: ``save_dir`` is None, or ``scalar_save_file`` does not end in
            ``.json``.
        TypeError: an argument is not a str (or ``os.PathLike`` for ``save_dir``).

    Example:
        >>> import json, os, tempfile
        >>> backend = LocalVisBackend(os.path.join(tempfile.mkdtemp(), 'vis_data'))
        >>> backend.add_scalars({'loss': 0.5, 'lr': 0.01}, step=10)
        >>> backend.close()
        >>> with open(os.path.join(backend.save_dir, 'scalars.json')) as f:
        ...     json.loads(f.readline())
        {'loss': 0.5, 'lr': 0.01, 'step': 10}
    """

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        img_save_dir: str = "vis_image",
        config_save_file: str = "config.py",
        scalar_save_file: str = "scalars.json",
    ) -> None:
        super().__init__(save_dir)
        for arg, value in (
            ("img_save_dir", img_save_dir),
            ("config_save_file", config_save_file),
            ("scalar_save_file", scalar_save_file),
        ):
            if not isinstance(value, str) or not value:
                raise TypeError(f"`{arg}` must be a non-empty str, got {value!r}")
        if not scalar_save_file.endswith(".json"):
            raise ValueError(
                f"`scalar_save_file` must end in '.json' (it holds JSON lines), "
                f"got {scalar_save_file!r}"
            )
        self._img_save_dir = os.path.join(self._save_dir, img_save_dir)
        self._config_save_file = os.path.join(self._save_dir, config_save_file)
        self._scalar_save_file = os.path.join(self._save_dir, scalar_save_file)
        self._scalar_file: IO[str] | None = None

    @property
    def scalar_save_file(self) -> str:
        """The path of the JSON-lines scalars file."""
        return self._scalar_save_file

    def add_scalars(self, scalar_dict: Mapping[str, float | int | Tensor], step: int = 0) -> None:
        """Append ``{**scalar_dict, "step": step}`` as one JSON line, and flush it.

        Args:
            scalar_dict: Name -> number, 0-d tensor or numpy scalar.
            step: The global step, written as ``"step"``.

        Raises:
            TypeError: a key is not a str, a value is not a scalar (the message names
                the key and the type), or ``step`` is not an int. Nothing is written.
        """
        record = scalars_to_numbers(scalar_dict)
        if type(step) is not int:
            check_step(step)
        if "step" not in record:
            record["step"] = step
        line = _json_line(record)
        file = self._scalar_file
        if file is None:
            os.makedirs(self._save_dir, exist_ok=True)
            file = self._scalar_file = open(  # noqa: SIM115 - kept open between calls
                self._scalar_save_file, "a", encoding="utf-8"
            )
        file.write(line)
        file.flush()

    def add_config(self, config: Any) -> None:
        """Write ``config.pretty_text`` (or ``str(config)``) to the config file.

        The file is replaced atomically: a reader never sees half of it.
        """
        write_atomic(self._config_save_file, config_text(config))

    def add_image(self, name: str, image: Any, step: int = 0) -> None:
        """Save ``image`` as ``<img_save_dir>/<name>_<step>.png`` (needs matplotlib).

        Args:
            name: The image's name (a ``/`` in it makes a sub-directory).
            image: ``H x W``, ``H x W x 3`` (RGB) or ``H x W x 4`` (RGBA) uint8 array
                or tensor.
            step: The global step, part of the file name.

        Raises:
            ImportError: matplotlib is not installed.
            TypeError: ``name`` is not a str or ``step`` not an int.
            ValueError: ``image`` has the wrong shape or dtype.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"`name` must be a non-empty str, got {name!r}")
        check_step(step)
        try:
            import matplotlib.image as mpimg
        except ImportError as err:
            raise ImportError(
                'LocalVisBackend.add_image needs matplotlib: pip install "camshaft-runner[plot]"'
            ) from err
        import numpy as np

        if hasattr(image, "detach"):  # a tensor
            image = image.detach().cpu().numpy()
        array = np.asarray(image)
        if array.dtype != np.uint8 or not (
            array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))
        ):
            raise ValueError(
                "`image` must be a uint8 array of shape (H, W), (H, W, 3) or (H, W, 4), "
                f"got dtype {array.dtype} and shape {tuple(array.shape)}"
            )
        path = os.path.join(self._img_save_dir, f"{name}_{step}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mpimg.imsave(path, array, cmap="gray" if array.ndim == 2 else None, format="png")

    def close(self) -> None:
        """Close the scalars file (a later write opens it again, appending)."""
        file, self._scalar_file = self._scalar_file, None
        if file is not None:
            file.close()


_TENSORBOARD_HINT = (
    'TensorboardVisBackend needs tensorboard: pip install "camshaft-runner[tensorboard]"'
)


@VISBACKENDS.register_module()
class TensorboardVisBackend(BaseVisBackend):
    """Write scalars, the config and images as TensorBoard events under ``save_dir``.

    ``torch.utils.tensorboard.SummaryWriter`` is imported and created on the first
    write, so building the backend is cheap. View the run with
    ``tensorboard --logdir <save_dir>``.

    Args:
        save_dir: The directory of the event files (created on the first write).

    Raises:
        ValueError: ``save_dir`` is None.
        ImportError: the ``tensorboard`` package is not installed (here, or on the
            first write if it could not be told earlier).

    Example:
        >>> import tempfile
        >>> backend = TensorboardVisBackend(tempfile.mkdtemp())
        >>> backend.add_scalars({'loss': 0.5}, step=1)
        >>> backend.close()
    """

    def __init__(self, save_dir: str | os.PathLike[str]) -> None:
        super().__init__(save_dir)
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise ImportError(_TENSORBOARD_HINT)
        self._writer: SummaryWriter | None = None

    @property
    def experiment(self) -> SummaryWriter:
        """The ``SummaryWriter`` (created on first access)."""
        return self._get_writer()

    def _get_writer(self) -> SummaryWriter:
        writer = self._writer
        if writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ImportError(_TENSORBOARD_HINT) from err
            os.makedirs(self._save_dir, exist_ok=True)
            writer = self._writer = SummaryWriter(self._save_dir)
        return writer

    def add_scalars(self, scalar_dict: Mapping[str, float | int | Tensor], step: int = 0) -> None:
        """Add each scalar with ``SummaryWriter.add_scalar(name, value, step)``.

        Raises:
            TypeError: a key is not a str, a value is not a scalar, or ``step`` is not
                an int. Nothing is written.
            ImportError: tensorboard is not installed.
        """
        numbers = scalars_to_numbers(scalar_dict)
        check_step(step)
        writer = self._get_writer()
        for name, value in numbers.items():
            writer.add_scalar(name, value, global_step=step)

    def add_config(self, config: Any) -> None:
        """Add the config text (``pretty_text`` or ``str``) under the tag ``'config'``."""
        self._get_writer().add_text("config", config_text(config))

    def add_image(self, name: str, image: Any, step: int = 0) -> None:
        """Add an ``H x W x 3`` RGB image (array or tensor) under ``name``."""
        check_step(step)
        self._get_writer().add_image(name, image, global_step=step, dataformats="HWC")

    def close(self) -> None:
        """Flush and close the writer (a later write opens a new event file)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
