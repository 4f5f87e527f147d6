"""camshaft.runner.hooks — the hooks the Runner calls at each point of a run.

Default hooks (every Runner has them unless ``default_hooks`` removes one):
:class:`RuntimeInfoHook`, :class:`IterTimerHook`, :class:`DistSamplerSeedHook`,
:class:`LoggerHook`, :class:`ParamSchedulerHook`, :class:`CheckpointHook`. Custom hooks
to add through ``custom_hooks``: :class:`EMAHook`, :class:`EarlyStoppingHook`,
:class:`EmptyCacheHook`, :class:`SyncBuffersHook`. The base layer:

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

from camshaft.runner.hooks._checkpoint_hook import CheckpointHook
from camshaft.runner.hooks._dispatch import HookDispatcher, HookError
from camshaft.runner.hooks._early_stopping_hook import EarlyStoppingHook
from camshaft.runner.hooks._ema_hook import EMAHook
from camshaft.runner.hooks._empty_cache_hook import EmptyCacheHook
from camshaft.runner.hooks._hook import Hook, HookRunner
from camshaft.runner.hooks._iter_timer_hook import IterTimerHook
from camshaft.runner.hooks._logger_hook import LoggerHook
from camshaft.runner.hooks._param_scheduler_hook import ParamSchedulerHook
from camshaft.runner.hooks._priority import Priority, get_priority
from camshaft.runner.hooks._runtime_info_hook import RuntimeInfoHook
from camshaft.runner.hooks._sampler_seed_hook import DistSamplerSeedHook
from camshaft.runner.hooks._sync_buffers_hook import SyncBuffersHook

__all__ = [
    "Hook",
    "HookRunner",
    "Priority",
    "get_priority",
    "HookDispatcher",
    "HookError",
    # default hooks
    "RuntimeInfoHook",
    "IterTimerHook",
    "DistSamplerSeedHook",
    "LoggerHook",
    "ParamSchedulerHook",
    "CheckpointHook",
    # custom hooks
    "EMAHook",
    "EarlyStoppingHook",
    "EmptyCacheHook",
    "SyncBuffersHook",
]
