"""Plot training curves from the scalars a :class:`LocalVisBackend` wrote.

A run writes ``work_dir/<timestamp>/vis_data/scalars.json`` (one JSON object per line,
each with a ``"step"``); :func:`plot_curves` finds the newest such file and draws one
subplot per key with matplotlib (the optional ``plot`` extra).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeGuard

__all__ = ["plot_curves"]

_TIMESTAMP = re.compile(r"\d{8}_\d{6}")
_PATTERN = "<YYYYMMDD_HHMMSS>/vis_data/scalars.json"


def _find_scalars_file(work_dir: Path) -> Path:
    """The newest ``<timestamp>/vis_data/scalars.json`` under ``work_dir``."""
    runs = []
    if work_dir.is_dir():
        runs = sorted(
            (entry for entry in work_dir.iterdir() if _TIMESTAMP.fullmatch(entry.name)),
            key=lambda entry: entry.name,
            reverse=True,
        )
    for run in runs:
        candidate = run / "vis_data" / "scalars.json"
        if candidate.is_file():
            return candidate
    where = "it is not a directory" if not work_dir.is_dir() else f"{len(runs)} run dirs checked"
    raise FileNotFoundError(
        f"no scalars file under work_dir {str(work_dir)!r} ({where}); searched "
        f"{os.path.join(str(work_dir), _PATTERN)}"
    )


def _read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of ``path``; a truncated last line (a crash mid-write) is skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number} is not a JSON object: {err}") from err
        if isinstance(record, dict):
            records.append(record)
    return records


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_train_record(record: dict[str, Any]) -> bool:
    """A training record carries a learning rate: a key ending in ``lr``."""
    return any(key.endswith("lr") for key in record)


def plot_curves(
    work_dir: str | os.PathLike[str],
    keys: Sequence[str] | str = ("loss",),
    out: str | os.PathLike[str] | None = None,
) -> Path:
    """Draw the curves of ``keys`` from the newest run under ``work_dir`` into a PNG.

    The scalars file is the newest ``work_dir/<YYYYMMDD_HHMMSS>/vis_data/scalars.json``
    (run directories are compared by name, which sorts them by time; directories
    without the file are passed over). Each key gets one subplot with ``step`` on the
    x axis and up to two series:

    * **train**: records that carry a learning rate (a key ending in ``lr``, such as
      ``lr``, ``train/lr`` or ``generator.lr``) — what the logger hook writes every
      logging interval;
    * **val**: every other record — the validation (and test) summaries.

    Records without a ``step``, and non-numeric values, are left out. A truncated
    last line (the run was killed while writing it) is ignored.

    Args:
        work_dir: The runner's work directory.
        keys: The scalar names to draw (a single str is one key).
        out: Where to write the PNG; default ``work_dir/curves.png``. Its parent
            directory is created if needed; the file is replaced atomically.

    Returns:
        The path of the PNG written.

    Raises:
        FileNotFoundError: no scalars file under ``work_dir`` (the message names it
            and the pattern searched).
        KeyError: a key appears in no record (the message lists the keys present).
        TypeError: ``keys`` is empty or holds a non-str.
        ValueError: a line other than the last is not valid JSON.
        ImportError: matplotlib is not installed (``pip install "camshaft-runner[plot]"``).

    Example:
        >>> plot_curves('work_dirs/my_exp', keys=('loss', 'accuracy/top1'))  # doctest: +SKIP
        PosixPath('work_dirs/my_exp/curves.png')
    """
    if not isinstance(work_dir, (str, os.PathLike)):
        raise TypeError(
            f"`work_dir` must be a str or os.PathLike, got {type(work_dir).__name__}: {work_dir!r}"
        )
    key_list = [keys] if isinstance(keys, str) else list(keys)
    if not key_list or not all(isinstance(key, str) and key for key in key_list):
        raise TypeError(f"`keys` must be a non-empty sequence of non-empty str, got {keys!r}")
    root = Path(work_dir)
    target = root / "curves.png" if out is None else Path(out)

    scalars_file = _find_scalars_file(root)
    records = _read_records(scalars_file)
    present = sorted({key for record in records for key in record if key != "step"})
    missing = [key for key in key_list if key not in present]
    if missing:
        raise KeyError(f"keys {missing} not found in {scalars_file}; keys present: {present}")

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            'plot_curves needs matplotlib: pip install "camshaft-runner[plot]"'
        ) from err

    figure = Figure(figsize=(8.0, 3.0 * len(key_list)), layout="constrained")
    FigureCanvasAgg(figure)  # the Agg canvas, without touching pyplot's global backend
    axes = figure.subplots(len(key_list), 1, squeeze=False)[:, 0]
    for ax, key in zip(axes, key_list, strict=True):
        series: dict[str, tuple[list[float], list[float]]] = {"train": ([], []), "val": ([], [])}
        for record in records:
            value, step = record.get(key), record.get("step")
            if not (_is_number(value) and _is_number(step)):
                continue
            xs, ys = series["train" if _is_train_record(record) else "val"]
            xs.append(float(step))
            ys.append(float(value))
        for label, (xs, ys) in series.items():
            if xs:
                ax.plot(xs, ys, label=label, marker="o" if len(xs) < 20 else None)
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
        ax.legend()
    figure.suptitle(str(scalars_file.parent.parent.name))

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            figure.savefig(file, format="png", dpi=100)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
