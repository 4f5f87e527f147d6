"""camshaft.runner.hooks — the hook base layer the Runner calls at each point of a run.

* :class:`Hook`: the 22 stages as no-ops, MMEngine's names and signatures, and the
  helpers (``every_n_epochs``, ``every_n_train_iters``, ``end_of_epoch``, ...) that
  read the runner through the small :class:`HookRunner` protocol;
* :class:`Priority` and :func:`get_priority`: priorities as 0-100, a level name or a
  member;
* :class:`HookDispatcher`: hooks in stable priority order, per-stage call lists built
  once at registration, :class:`HookError` naming the hook and stage that failed, and
  the per-stage table logged at start-up.

Example:
    >>> from camshaft.runner.hooks import Hook, HookDispatcher
    >>> class Counter(Hook):
    ...     calls = 0
    ...     def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
    ...         Counter.calls += 1
    >>> dispatcher = HookDispatcher()
    >>> dispatcher.register(Counter())
    >>> dispatcher.call('after_train_iter', None, batch_idx=0)
    >>> Counter.calls
    1
"""

from camshaft.runner.hooks._dispatch import HookDispatcher, HookError
from camshaft.runner.hooks._hook import Hook, HookRunner
from camshaft.runner.hooks._priority import Priority, get_priority

__all__ = [
    "Hook",
    "HookRunner",
    "Priority",
    "get_priority",
    "HookDispatcher",
    "HookError",
]
