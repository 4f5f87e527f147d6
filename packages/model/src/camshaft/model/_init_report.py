"""The init report: for every parameter, what set it last during ``init_weights``.

The outermost ``BaseModule.init_weights`` call builds one :class:`InitReportEntry` per
parameter and logs them to the ``camshaft`` logger in two sizes:

* INFO, one line: how many parameters each initializer set, e.g.
  ``init_weights(ToyNet): 4 parameters — KaimingInit: 3, XavierInit: 1``;
* DEBUG, one record holding the whole table, in MMEngine's layout (a block per
  parameter: ``conv1.weight - torch.Size([1, 1, 1, 1]):`` then the description). The
  table is formatted only when DEBUG is enabled for that logger.

The entries stay available afterwards through ``BaseModule.init_report()``, and
:func:`format_init_report` turns them into the table text (the runner writes it to its
log file).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

import torch

__all__ = ["InitReportEntry", "format_init_report"]

_LOGGER_NAME = "camshaft"
_LEADING_NAME = re.compile(r"^([A-Za-z_][\w.]*): ")
_USER_DEFINED = re.compile(r"^Initialized by user-defined `init_weights` in ([\w.]+)$")
_RESET = re.compile(r"^PyTorch default init by `([\w.]+)\(\)`")
_MAX_SOURCE = 40


def user_defined(cls_name: str) -> str:
    """The description of parameters set by a hand-written ``init_weights``."""
    return f"Initialized by user-defined `init_weights` in {cls_name}"


def unchanged(owner: str) -> str:
    """The description of parameters nothing wrote during the call."""
    return (
        f"Not initialized by `init_weights` of {owner}: kept the value it had before "
        "(no init_cfg entry, user-defined `init_weights` or checkpoint covered it)"
    )


def reset_by_default(module_cls: str) -> str:
    """The description of materialised parameters filled by ``reset_parameters()``."""
    return (
        f"PyTorch default init by `{module_cls}.reset_parameters()`: materialised from the "
        "meta device, and no init_cfg entry, user-defined `init_weights` or checkpoint "
        "covered it"
    )


UNINITIALIZED = (
    "Uninitialized memory: materialised from the meta device, and nothing initialized it "
    "(its module has no `reset_parameters()`)"
)


class InitReportEntry(NamedTuple):
    """One line of the init report.

    Attributes:
        name: The parameter's qualified name, e.g. ``'backbone.conv1.weight'``.
        shape: Its shape.
        description: What set it last, e.g. ``'KaimingInit: a=0, mode=fan_out, ...'``
            or ``'Initialized by user-defined `init_weights` in ToyConv'``.
        source: A short name for that, used to count in the summary line:
            ``'KaimingInit'``, ``'ToyConv.init_weights'``, ``'unchanged'``,
            ``'Linear.reset_parameters'`` or ``'uninitialized'``.
    """

    name: str
    shape: torch.Size
    description: str
    source: str


def source_of(description: str) -> str:
    """The short name :class:`InitReportEntry` counts ``description`` under."""
    user = _USER_DEFINED.match(description)
    if user is not None:
        return f"{user.group(1)}.init_weights"
    reset = _RESET.match(description)
    if reset is not None:
        return reset.group(1)
    leading = _LEADING_NAME.match(description)
    if leading is not None:
        return leading.group(1)
    if len(description) <= _MAX_SOURCE:
        return description
    return description[: _MAX_SOURCE - 3] + "..."


def format_init_report(entries: Iterable[InitReportEntry]) -> str:
    """The per-parameter table, one block per parameter, as MMEngine prints it.

    Args:
        entries: The report, e.g. ``module.init_report()``.

    Returns:
        One block per entry, ``<name> - <shape>:`` on one line and the description on
        the next, blocks separated by a blank line.

    Example:
        >>> entry = InitReportEntry("fc.bias", torch.Size([2]), "ConstantInit: val=0, bias=0",
        ...                         "ConstantInit")
        >>> print(format_init_report([entry]))
        fc.bias - torch.Size([2]):
        ConstantInit: val=0, bias=0
        <BLANKLINE>
    """
    return "\n".join(f"{e.name} - {e.shape}:\n{e.description}\n" for e in entries)


def summary_line(owner: str, entries: list[InitReportEntry]) -> str:
    """``init_weights(Owner): N parameters — Source: n, ...`` in first-seen order."""
    counts = Counter(entry.source for entry in entries)
    noun = "parameter" if len(entries) == 1 else "parameters"
    parts = ", ".join(f"{source}: {count}" for source, count in counts.items())
    head = f"init_weights({owner}): {len(entries)} {noun}"
    return f"{head} — {parts}" if parts else head


def log_report(owner: str, entries: list[InitReportEntry]) -> None:
    """Log the summary at INFO and, only if DEBUG is on, the table as one record."""
    logger = logging.getLogger(_LOGGER_NAME)
    if logger.isEnabledFor(logging.INFO):
        logger.info("%s", summary_line(owner, entries))
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "init_weights(%s): what set each parameter last\n%s",
            owner,
            format_init_report(entries),
        )
