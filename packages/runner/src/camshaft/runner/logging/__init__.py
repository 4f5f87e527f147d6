"""camshaft.runner.logging — the message hub, the logger and the log-line formatter.

* :class:`MessageHub` and :class:`HistoryBuffer`: scalars with smoothing windows in
  bounded buffers (O(1) per update, tensors stored without ``.item()``), runtime info,
  and a state dict of plain types;
* :class:`MMLogger` and :func:`print_log`: MMEngine's logging names on the standard
  ``logging`` module, in the ``camshaft`` logger hierarchy;
* :class:`LogProcessor` (in ``LOG_PROCESSORS``): the training and evaluation lines,
  reading a runner through the small :class:`LogRunner` protocol.

Example:
    >>> from camshaft.runner.logging import MessageHub
    >>> hub = MessageHub.get_instance('logging_demo')
    >>> hub.update_scalar('train/loss', 0.25)
    >>> hub.get_scalar('train/loss').current()
    0.25
"""

from camshaft.runner.logging._history_buffer import HistoryBuffer
from camshaft.runner.logging._log_processor import LogProcessor, LogRunner
from camshaft.runner.logging._logger import MMLogger, print_log
from camshaft.runner.logging._message_hub import MessageHub

__all__ = [
    "MessageHub",
    "HistoryBuffer",
    "MMLogger",
    "print_log",
    "LogProcessor",
    "LogRunner",
]
