"""Hook dispatch: the ordered hook list the Runner owns, and the per-stage call path.

:class:`HookDispatcher` keeps hooks sorted by priority (stable: of equal priorities,
the earlier registration runs first) and, on every registration, rebuilds one tuple
per stage holding the bound methods of the hooks that act at that stage (those listed
by :meth:`Hook.get_triggered_stages`). A call is then one dict lookup and a loop over
that tuple, with no attribute scan, which matters because
``before_train_iter``/``after_train_iter`` run on every iteration.

The tuples are rebuilt once more after each ``before_train`` stage: a hook that has
then learnt it has nothing to do at a stage in this run leaves that stage out of
``get_triggered_stages`` (``ParamSchedulerHook`` drops ``after_train_iter`` when no
scheduler steps per iteration) and costs nothing there until the next ``before_train``.

A hook that raises is reported as a :class:`HookError` naming the hook class and the
stage, with the original exception chained; ``KeyboardInterrupt`` and ``SystemExit``
are not ``Exception`` subclasses and pass through unchanged.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from typing import Any

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks._hook import Hook
from camshaft.runner.hooks._priority import Priority, get_priority, priority_label

__all__ = ["HookDispatcher", "HookError"]

_Entry = tuple[Hook, Callable[..., None], int]


class HookError(RuntimeError):
    """A hook raised at a stage; the original exception is the ``__cause__``.

    Attributes:
        hook: The hook instance that raised.
        stage: The stage being called.
    """

    def __init__(self, hook: Hook, stage: str, exc: BaseException) -> None:
        super().__init__(
            f"hook {type(hook).__name__} failed at stage {stage!r}: {type(exc).__name__}: {exc}"
        )
        self.hook = hook
        self.stage = stage


class HookDispatcher:
    """Hooks in priority order, called stage by stage.

    Example:
        >>> class Greeter(Hook):
        ...     def before_run(self, runner):
        ...         print('hello from', runner)
        >>> dispatcher = HookDispatcher()
        >>> dispatcher.register(Greeter(), priority='VERY_HIGH')
        >>> dispatcher.call('before_run', 'runner')
        hello from runner
        >>> print(dispatcher.stage_table())
        before_run:
        (VERY_HIGH   ) Greeter
         --------------------
    """

    def __init__(self) -> None:
        self._hooks: list[Hook] = []
        self._priorities: list[int] = []
        self._by_stage: dict[str, tuple[_Entry, ...]] = dict.fromkeys(Hook.stages, ())

    @property
    def hooks(self) -> tuple[Hook, ...]:
        """The registered hooks, in the order they run."""
        return tuple(self._hooks)

    def register(
        self, hook: Hook | Mapping[str, Any], priority: int | str | Priority | None = None
    ) -> None:
        """Add a hook, placed after every hook whose priority is lower or equal.

        Args:
            hook: A :class:`Hook` instance, or a config dict built with ``HOOKS``
                (``dict(type='MyHook', priority='LOW', ...)``; the optional
                ``priority`` key is taken out before building and the dict is not
                modified).
            priority: Overrides the hook's own (and the config's) priority; as for
                :func:`get_priority`. When given, it is also set as
                ``hook.priority``, as MMEngine does.

        Raises:
            TypeError: ``hook`` is not a Hook instance or a mapping, or the config
                built something that is not a Hook; or a priority has a bad type.
            ValueError: a priority is out of range or an unknown name.

        Example:
            >>> dispatcher = HookDispatcher()
            >>> dispatcher.register(Hook(), priority=20)
            >>> [type(h).__name__ for h in dispatcher.hooks]
            ['Hook']
        """
        if isinstance(hook, Mapping):
            cfg = dict(hook)
            cfg_priority = cfg.pop("priority", None)
            built = HOOKS.build(cfg)
            if not isinstance(built, Hook):
                raise TypeError(
                    f"hook config {dict(hook)!r} built a {type(built).__name__}, "
                    "not a Hook; register only Hook subclasses in HOOKS"
                )
            hook = built
            if priority is None:
                priority = cfg_priority
        elif not isinstance(hook, Hook):
            hint = (
                f"; pass an instance, e.g. {hook.__name__}()"
                if isinstance(hook, type) and issubclass(hook, Hook)
                else ""
            )
            raise TypeError(
                "hook must be a Hook instance or a config dict with a 'type' key; "
                f"got {type(hook).__name__} {hook!r}{hint}"
            )
        if priority is None:
            value = _hook_priority(hook)
        else:
            value = get_priority(priority)
            hook.priority = priority
        position = bisect.bisect_right(self._priorities, value)
        self._priorities.insert(position, value)
        self._hooks.insert(position, hook)
        self._rebuild()

    def call(self, stage: str, runner: Any, **kwargs: Any) -> None:
        """Call ``stage`` on every hook that overrides it, in priority order.

        Args:
            stage: One of :attr:`Hook.stages`.
            runner: Passed to each hook as its first argument.
            **kwargs: Passed on by name (``batch_idx``, ``data_batch``, ``outputs``,
                ``metrics``, ``checkpoint``).

        Raises:
            ValueError: ``stage`` is not a stage name.
            HookError: a hook raised an ``Exception``; it is chained as the cause.

        Example:
            >>> HookDispatcher().call('after_train_iter', None, batch_idx=0)
        """
        try:
            entries = self._by_stage[stage]
        except KeyError:
            raise _unknown_stage(stage) from None
        for hook, method, _ in entries:
            try:
                method(runner, **kwargs)
            except Exception as exc:
                raise HookError(hook, stage, exc) from exc
        if stage == "before_train":
            # The hooks now know the run (its schedulers, its checkpoint cadence): ask
            # again which stages they act at, so the per-iteration tuples hold only
            # hooks with work to do.
            self._rebuild()

    def call_before_iter(self, stage: str, runner: Any, batch_idx: int, data_batch: Any) -> None:
        """:meth:`call` for a ``before_*_iter`` stage, its arguments given by position.

        The same calls as ``call(stage, runner, batch_idx=..., data_batch=...)``, by the
        same keywords, without building and unpacking a keyword dict for every hook:
        the training loop calls this once per iteration.

        Raises:
            ValueError: ``stage`` is not a stage name.
            HookError: as :meth:`call`.
        """
        try:
            entries = self._by_stage[stage]
        except KeyError:
            raise _unknown_stage(stage) from None
        for hook, method, _ in entries:
            try:
                method(runner, batch_idx=batch_idx, data_batch=data_batch)
            except Exception as exc:
                raise HookError(hook, stage, exc) from exc

    def call_after_iter(
        self, stage: str, runner: Any, batch_idx: int, data_batch: Any, outputs: Any
    ) -> None:
        """:meth:`call` for an ``after_*_iter`` stage, its arguments given by position.

        See :meth:`call_before_iter`; ``outputs`` is passed on as ``outputs=``.

        Raises:
            ValueError: ``stage`` is not a stage name.
            HookError: as :meth:`call`.
        """
        try:
            entries = self._by_stage[stage]
        except KeyError:
            raise _unknown_stage(stage) from None
        for hook, method, _ in entries:
            try:
                method(runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs)
            except Exception as exc:
                raise HookError(hook, stage, exc) from exc

    def stage_table(self, compact: bool = False) -> str:
        """Return the hooks called at each stage.

        Stages no hook overrides are left out. Each stage is a block of
        ``(PRIORITY    ) HookClass`` lines in call order, ended by a dashed line; with
        ``compact``, one line per stage, ``stage: HookA(VERY_HIGH), HookB(NORMAL)``,
        as the Runner logs it at start-up.

        Returns:
            The table as text (empty when no hook overrides any stage).
        """
        blocks = []
        for stage in Hook.stages:
            entries = self._by_stage[stage]
            if entries and compact:
                calls = ", ".join(f"{type(h).__name__}({priority_label(p)})" for h, _, p in entries)
                blocks.append(f"  {stage}: {calls}")
            elif entries:
                lines = [f"({priority_label(p):<12}) {type(h).__name__}" for h, _, p in entries]
                blocks.append("\n".join([f"{stage}:", *lines, " --------------------"]))
        return "\n".join(blocks)

    def _rebuild(self) -> None:
        table: dict[str, list[_Entry]] = {stage: [] for stage in Hook.stages}
        for hook, value in zip(self._hooks, self._priorities, strict=True):
            for stage in hook.get_triggered_stages():
                table[stage].append((hook, getattr(hook, stage), value))
        self._by_stage = {stage: tuple(entries) for stage, entries in table.items()}


def _hook_priority(hook: Hook) -> int:
    """Read ``hook.priority``, naming the hook class when it is not a valid priority."""
    try:
        return get_priority(hook.priority)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{type(hook).__name__}.priority is invalid: {exc}") from None


def _unknown_stage(stage: str) -> ValueError:
    return ValueError(f"stage must be one of {', '.join(Hook.stages)}; got {stage!r}")
