"""The :class:`Runner`: a coordinator that builds the parts of a run and drives them.

The parts live elsewhere — loops (:mod:`camshaft.runner.loops`), hooks and their
dispatcher (:mod:`camshaft.runner.hooks`), checkpoint contents
(:mod:`camshaft.runner._runner_checkpoint`), building from configs
(:mod:`camshaft.runner._runner_build`) and the environment
(:mod:`camshaft.runner._runner_env`). The Runner wires them together and exposes the
attributes hooks read (documented on the class).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from camshaft.registry import Config, ConfigError
from camshaft.runner import _runner_build as build
from camshaft.runner import _runner_checkpoint as ckpt
from camshaft.runner import _runner_env as env
from camshaft.runner.checkpoint import CheckpointWriter
from camshaft.runner.hooks import Hook, HookDispatcher

__all__ = ["Runner"]


class Runner:
    """Train, validate and test a model from objects or config dicts.

    Arguments are MMEngine's (see the package README for each); every part may be
    given built or as a config dict, and train/val/test are each configured fully
    (dataloader, loop config, optimizer wrapper or evaluator) or not at all.

    Attributes hooks may use: ``model``, ``unwrapped_model``, ``epoch``, ``iter``,
    ``max_epochs``, ``max_iters``, ``train_loop``, ``val_loop``, ``test_loop``,
    ``train_dataloader``, ``val_dataloader``, ``test_dataloader``, ``optim_wrapper``,
    ``param_schedulers``, ``message_hub``, ``logger``, ``log_processor``,
    ``visualizer``, ``work_dir``, ``log_dir``, ``timestamp``, ``experiment_name``,
    ``cfg``, ``seed``, ``rank``, ``world_size``, ``distributed``, ``hooks``,
    ``save_checkpoint()``, ``load_checkpoint()``, ``call_hook()``.

    Example:
        >>> runner = Runner(  # doctest: +SKIP
        ...     model=MyModel(), work_dir='./work_dir', train_dataloader=loader,
        ...     optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        ...     train_cfg=dict(by_epoch=True, max_epochs=3))
        >>> runner.train()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module | Mapping[str, Any],
        work_dir: str | os.PathLike[str],
        train_dataloader: DataLoader | Mapping[str, Any] | None = None,
        val_dataloader: DataLoader | Mapping[str, Any] | None = None,
        test_dataloader: DataLoader | Mapping[str, Any] | None = None,
        train_cfg: Mapping[str, Any] | None = None,
        val_cfg: Mapping[str, Any] | None = None,
        test_cfg: Mapping[str, Any] | None = None,
        auto_scale_lr: Mapping[str, Any] | None = None,
        optim_wrapper: Any = None,
        param_scheduler: Any = None,
        val_evaluator: Any = None,
        test_evaluator: Any = None,
        default_hooks: Mapping[str, Any] | None = None,
        custom_hooks: list[Any] | None = None,
        data_preprocessor: Any = None,
        load_from: str | os.PathLike[str] | None = None,
        resume: bool = False,
        launcher: str = "none",
        env_cfg: Mapping[str, Any] | None = None,
        log_processor: Any = None,
        log_level: str | int = "INFO",
        visualizer: Any = None,
        default_scope: str | None = None,
        randomness: Mapping[str, Any] | None = None,
        experiment_name: str | None = None,
        cfg: Config | Mapping[str, Any] | None = None,
    ) -> None:
        build.check_triples(
            {
                "train_dataloader": train_dataloader,
                "train_cfg": train_cfg,
                "optim_wrapper": optim_wrapper,
                "val_dataloader": val_dataloader,
                "val_cfg": val_cfg,
                "val_evaluator": val_evaluator,
                "test_dataloader": test_dataloader,
                "test_cfg": test_cfg,
                "test_evaluator": test_evaluator,
            }
        )
        if not isinstance(resume, bool):
            raise TypeError(f"`resume` must be a bool, got {type(resume).__name__}: {resume!r}")
        self.cfg = cfg if isinstance(cfg, Config) else Config(dict(cfg or {}))
        self._loop_cfgs = {"train": train_cfg, "val": val_cfg, "test": test_cfg}
        self._dataloader_cfgs = {
            "train": train_dataloader,
            "val": val_dataloader,
            "test": test_dataloader,
        }
        self._evaluator_cfgs = {"val": val_evaluator, "test": test_evaluator}
        self._optim_wrapper_cfg = optim_wrapper
        self._param_scheduler_cfg = param_scheduler
        self._auto_scale_lr = auto_scale_lr
        self.load_from = None if load_from is None else str(load_from)
        self.resume_requested = resume
        self._loaded = False
        self._checkpoint_writer: CheckpointWriter | None = None
        self.launcher = launcher

        self.rank, self.world_size, self._owns_process_group = env.setup_env(launcher, env_cfg)
        self.distributed = self.world_size > 1 or launcher != "none"
        randomness = dict(randomness or {})
        unknown = set(randomness) - {"seed", "deterministic", "diff_rank_seed"}
        if unknown:
            raise ConfigError(
                f"`randomness` has unknown keys {sorted(unknown)}; allowed: seed, "
                "deterministic, diff_rank_seed"
            )
        self._diff_rank_seed = bool(randomness.get("diff_rank_seed", False))
        self.seed = env.set_randomness(
            randomness.get("seed"),
            bool(randomness.get("deterministic", False)),
            self._diff_rank_seed,
        )

        work_path, timestamp = env.prepare_work_dir(work_dir)
        self.timestamp = self._shared_timestamp(timestamp)
        self.work_dir = str(work_path)
        self.log_dir = str(work_path / self.timestamp)
        self.experiment_name = experiment_name or self._default_experiment_name()
        if default_scope is not None:
            from camshaft.registry import DefaultScope

            DefaultScope.get_instance(self.experiment_name, scope_name=default_scope)
        self._setup_logging(log_level, log_processor, visualizer)

        model = build.build_model(model, data_preprocessor)
        if torch.cuda.is_available():
            model = model.cuda()
        env.compile_model(model, self.cfg.get("compile"))
        self.model = env.wrap_model(model, self.cfg.get("model_wrapper_cfg"), self.distributed)
        self.unwrapped_model = env.unwrap_model(self.model)

        self._hooks = HookDispatcher()
        self.register_hooks(default_hooks, custom_hooks)
        self._train_loop: Any = None
        self._val_loop: Any = None
        self._test_loop: Any = None
        self._optim_wrapper: Any = None
        self._param_schedulers: Any = None
        self._announced = False
        self.visualizer.add_config(self.cfg if len(self.cfg) else self._plain_args())

    # --- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Finish queued checkpoint writes; release the visualizer, log file, process group.

        Safe to call twice; ``with Runner(...) as runner:`` calls it on exit.

        Example:
            >>> with Runner(model, work_dir) as runner:  # doctest: +SKIP
            ...     runner.train()
        """
        try:
            self.wait_for_checkpoint_writes()
        finally:
            self.visualizer.close()
            self.logger.close()
        if self._owns_process_group:
            import torch.distributed as torch_dist

            if torch_dist.is_initialized():
                torch_dist.destroy_process_group()
            self._owns_process_group = False

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- construction helpers ---------------------------------------------------------

    @classmethod
    def from_cfg(cls, cfg: Config | Mapping[str, Any]) -> Runner:
        """Build a Runner from a config (``Config.fromfile(...)`` or a dict).

        Raises:
            ConfigError: ``model`` or ``work_dir`` is missing.
        """
        cfg = cfg if isinstance(cfg, Config) else Config(dict(cfg))
        for key in ("model", "work_dir"):
            if cfg.get(key) is None:
                raise ConfigError(f"the config has no {key!r}; add {key}=... to it")
        names = [
            "train_dataloader", "val_dataloader", "test_dataloader", "train_cfg", "val_cfg",
            "test_cfg", "auto_scale_lr", "optim_wrapper", "param_scheduler", "val_evaluator",
            "test_evaluator", "default_hooks", "custom_hooks", "data_preprocessor", "load_from",
            "env_cfg", "log_processor", "visualizer", "default_scope", "randomness",
            "experiment_name",
        ]  # fmt: skip
        kwargs = {name: build.plain(cfg.get(name)) for name in names}
        return cls(
            model=build.plain(cfg["model"]),
            work_dir=cfg["work_dir"],
            resume=bool(cfg.get("resume", False)),
            launcher=cfg.get("launcher", "none"),
            log_level=cfg.get("log_level", "INFO"),
            cfg=cfg,
            **kwargs,
        )

    def _shared_timestamp(self, timestamp: str) -> str:
        if self.world_size == 1:
            return timestamp
        from camshaft.dist import broadcast_object_list

        holder = [timestamp]
        broadcast_object_list(holder, src=0)
        return str(holder[0])

    def _default_experiment_name(self) -> str:
        filename = self.cfg.filename if hasattr(self.cfg, "filename") else None
        if filename:
            return f"{Path(filename).stem}_{self.timestamp}"
        return self.timestamp

    def _setup_logging(self, log_level: str | int, log_processor: Any, visualizer: Any) -> None:
        from camshaft.runner._registry import LOG_PROCESSORS
        from camshaft.runner.logging import LogProcessor, MessageHub, MMLogger

        name = build.unique_name(self.experiment_name, MessageHub.check_instance_created)
        self.message_hub = MessageHub.get_instance(name)
        self.logger = MMLogger.get_instance(
            build.unique_name(self.experiment_name, MMLogger.check_instance_created),
            log_file=os.path.join(self.log_dir, f"{self.timestamp}.log"),
            log_level=log_level,
        )
        by_epoch = dict(self._loop_cfgs["train"] or {}).get("by_epoch", True)
        if isinstance(log_processor, LogProcessor):
            self.log_processor = log_processor
        else:
            lp_cfg = dict(log_processor or {})
            lp_cfg.setdefault("type", "LogProcessor")
            lp_cfg.setdefault("by_epoch", by_epoch)
            self.log_processor = LOG_PROCESSORS.build(lp_cfg)
        self.visualizer = build.build_visualizer(visualizer, self.experiment_name, self.log_dir)

    def _plain_args(self) -> dict[str, Any]:
        plain: dict[str, Any] = {"work_dir": self.work_dir, "seed": self.seed}
        for mode, value in self._loop_cfgs.items():
            if isinstance(value, Mapping):
                plain[f"{mode}_cfg"] = build.plain(value)
        if isinstance(self._optim_wrapper_cfg, Mapping):
            plain["optim_wrapper"] = build.plain(self._optim_wrapper_cfg)
        return plain

    # --- hooks ------------------------------------------------------------------------

    def register_hooks(self, default_hooks: Mapping[str, Any] | None, custom_hooks: Any) -> None:
        """Register the default hooks (merged with ``default_hooks``) and ``custom_hooks``."""
        import camshaft.runner.hooks  # noqa: F401  - registers the built-in hooks

        for hook in build.merge_default_hooks(default_hooks):
            self.register_hook(hook)
        for hook in build.as_list(custom_hooks):
            self.register_hook(hook)

    def register_hook(self, hook: Hook | Mapping[str, Any], priority: Any = None) -> None:
        """Register one hook (built or a config) with an optional priority."""
        self._hooks.register(hook, priority=priority)

    @property
    def hooks(self) -> list[Hook]:
        """The registered hooks in call order."""
        return list(self._hooks.hooks)

    def call_hook(self, fn_name: str, **kwargs: Any) -> None:
        """Call stage ``fn_name`` of every hook that implements it, in priority order."""
        self._hooks.call(fn_name, self, **kwargs)

    def _direct_iteration_callers(self) -> tuple[Callable[..., None], Callable[..., None]] | None:
        # The training loop's per-iteration path (see loops._base.train_iteration_callers).
        if type(self).call_hook is not Runner.call_hook:
            return None
        before, after = self._hooks.call_before_iter, self._hooks.call_after_iter
        partial = functools.partial
        return partial(before, "before_train_iter", self), partial(after, "after_train_iter", self)

    def _announce(self) -> None:
        if not self._announced:
            self._announced = True
            self.logger.info("hooks by stage:\n%s", self._hooks.stage_table(compact=True))

    # --- parts built on demand ----------------------------------------------------------

    def build_dataloader(self, dataloader: DataLoader | Mapping[str, Any]) -> DataLoader:
        """A DataLoader from a config, seeded with the run's seed."""
        from camshaft.runner.data import build_dataloader

        return build_dataloader(dataloader, seed=self.seed, diff_rank_seed=self._diff_rank_seed)

    def build_evaluator(self, evaluator: Any) -> Any:
        """An Evaluator from any of the accepted forms (see ``val_evaluator``)."""
        return build.build_evaluator(evaluator)

    @property
    def train_loop(self) -> Any:
        """The training loop, built on first use from ``train_cfg``."""
        if self._train_loop is None:
            self._train_loop = self._build_loop("train")
        return self._train_loop

    @property
    def val_loop(self) -> Any:
        """The validation loop, or None when validation is not configured."""
        if self._val_loop is None and self._loop_cfgs["val"] is not None:
            self._val_loop = self._build_loop("val")
        return self._val_loop

    @property
    def test_loop(self) -> Any:
        """The test loop, or None when testing is not configured."""
        if self._test_loop is None and self._loop_cfgs["test"] is not None:
            self._test_loop = self._build_loop("test")
        return self._test_loop

    def _build_loop(self, mode: str) -> Any:
        cfg = self._loop_cfgs[mode]
        if cfg is None:
            needs = ", ".join(build._TRIPLES[mode])
            raise RuntimeError(f"cannot {mode}: the Runner was built without {needs}")
        evaluator = self._evaluator_cfgs.get(mode)
        return build.build_loop(self, cfg, mode, self._dataloader_cfgs[mode], evaluator)

    def _train_loop_if_built(self) -> Any:
        return self._train_loop

    def _optim_wrapper_if_built(self) -> Any:
        return self._optim_wrapper

    def _param_schedulers_if_built(self) -> Any:
        return self._param_schedulers

    @property
    def optim_wrapper(self) -> Any:
        """The optimizer wrapper(s), built on first use from ``optim_wrapper``."""
        if self._optim_wrapper is None:
            from camshaft.runner.optim import build_optim_wrapper

            if self._optim_wrapper_cfg is None:
                raise RuntimeError("the Runner was built without `optim_wrapper`")
            self._optim_wrapper = build_optim_wrapper(self.model, self._optim_wrapper_cfg)
            build.scale_lr(self, self._auto_scale_lr)
            build.install_guards(self)
        return self._optim_wrapper

    @property
    def param_schedulers(self) -> Any:
        """The parameter schedulers (a list, or a dict of lists), or None."""
        if self._param_schedulers is None and self._param_scheduler_cfg is not None:
            from camshaft.runner.optim import build_param_schedulers

            loop = self.train_loop
            self._param_schedulers = build_param_schedulers(
                self.optim_wrapper,
                self._param_scheduler_cfg,
                epoch_length=len(loop.dataloader),
                max_epochs=loop.max_epochs,
                max_iters=loop.max_iters,
            )
        return self._param_schedulers

    def _position(self) -> str:
        return f"iteration {self.iter + 1} (epoch {self.epoch + 1})"

    # --- what hooks read -------------------------------------------------------------

    @property
    def epoch(self) -> int:
        """Training epochs completed before the current one."""
        return 0 if self._train_loop is None else int(self._train_loop.epoch)

    @property
    def iter(self) -> int:
        """Training iterations completed before the current one."""
        return 0 if self._train_loop is None else int(self._train_loop.iter)

    @property
    def max_epochs(self) -> int:
        """Epochs to train (0 without a training loop)."""
        return 0 if self._train_loop is None else int(self._train_loop.max_epochs)

    @property
    def max_iters(self) -> int:
        """Iterations to train (0 without a training loop)."""
        return 0 if self._train_loop is None else int(self._train_loop.max_iters)

    @property
    def train_dataloader(self) -> DataLoader | None:
        """The training DataLoader (None until the training loop is built)."""
        return None if self._train_loop is None else self._train_loop.dataloader

    @property
    def val_dataloader(self) -> DataLoader | None:
        """The validation DataLoader, or None."""
        loop = self.val_loop
        return None if loop is None else loop.dataloader

    @property
    def test_dataloader(self) -> DataLoader | None:
        """The test DataLoader, or None."""
        loop = self.test_loop
        return None if loop is None else loop.dataloader

    @property
    def dataset_meta(self) -> Any:
        """``metainfo`` of the first dataset that has one (train, val, test)."""
        for loop in (self._train_loop, self._val_loop, self._test_loop):
            meta = getattr(
                getattr(getattr(loop, "dataloader", None), "dataset", None), "metainfo", None
            )
            if meta is not None:
                return meta
        return None

    # --- running ---------------------------------------------------------------------

    def train(self) -> nn.Module:
        """Train (validating as configured); return the trained model.

        Raises:
            RuntimeError: the Runner has no training configuration.
        """
        self._announce()
        loop = self.train_loop
        self.optim_wrapper  # noqa: B018 - build (and scale) before the schedulers
        self.param_schedulers  # noqa: B018
        self.val_loop  # noqa: B018
        self.call_hook("before_run")
        init_weights = getattr(self.unwrapped_model, "init_weights", None)
        if callable(init_weights) and not getattr(self.unwrapped_model, "is_init", False):
            init_weights()
        self.load_or_resume()
        for wrapper in build.optim_wrappers(self._optim_wrapper):
            wrapper.initialize_count_status(self.model, loop.iter, loop.max_iters)
        try:
            model = loop.run()
        except BaseException:
            self._finish_writes_after_failure()
            raise
        self.wait_for_checkpoint_writes()
        self.call_hook("after_run")
        return model

    def val(self) -> dict[str, Any]:
        """Validate once; return the metrics."""
        return self._evaluate("val")

    def test(self) -> dict[str, Any]:
        """Test once; return the metrics."""
        return self._evaluate("test")

    def _evaluate(self, mode: str) -> dict[str, Any]:
        self._announce()
        loop = self.val_loop if mode == "val" else self.test_loop
        if loop is None:
            loop = self._build_loop(mode)  # raises, naming what is missing
        self.call_hook("before_run")
        self.load_or_resume()
        metrics: dict[str, Any] = loop.run()
        self.call_hook("after_run")
        return metrics

    # --- checkpoints -------------------------------------------------------------------

    @property
    def checkpoint_writer(self) -> CheckpointWriter:
        """Runs checkpoint file writes in order, in the background when asked."""
        if self._checkpoint_writer is None:
            self._checkpoint_writer = CheckpointWriter()
        return self._checkpoint_writer

    def wait_for_checkpoint_writes(self) -> None:
        """Block until every queued checkpoint write is on disk.

        ``train()`` calls it before ``after_train``, and ``load_checkpoint`` and
        ``close`` before they start.

        Raises:
            CheckpointSaveError: a background write failed (the cause chained).
        """
        if self._checkpoint_writer is not None:
            self._checkpoint_writer.wait()

    def _finish_writes_after_failure(self) -> None:
        """Training raised: still finish the writes, logging (not raising) their errors."""
        try:
            self.wait_for_checkpoint_writes()
        except Exception as exc:
            self.logger.error("%s", exc)

    def load_or_resume(self) -> None:
        """Resume or load weights as ``resume``/``load_from`` say (once)."""
        if not self._loaded:
            self._loaded = True
            ckpt.load_or_resume(self)

    def resume(self, filename: str | os.PathLike[str]) -> None:
        """Continue training exactly where the checkpoint ``filename`` left off.

        Raises:
            CheckpointError: the file is unreadable, or its weights do not match the
                model (the message lists the mismatched keys).
        """
        checkpoint = self.load_checkpoint(filename, strict=True)
        ckpt.restore_training_state(self, checkpoint)
        meta = checkpoint.get("meta", {})
        self.logger.info(
            "resumed from %s at epoch %s, iteration %s",
            filename,
            meta.get("epoch"),
            meta.get("iter"),
        )

    def load_checkpoint(
        self,
        filename: str | os.PathLike[str],
        map_location: Any = "cpu",
        strict: bool = False,
    ) -> dict[str, Any]:
        """Load the weights of ``filename`` into the model (safe loading); return the checkpoint."""
        from camshaft.init import load_checkpoint

        self.wait_for_checkpoint_writes()
        checkpoint = load_checkpoint(
            self.unwrapped_model,
            filename,
            map_location=map_location,
            strict=strict,
            revise_keys=[(r"^module\.", ""), *env.wrapped_key_patterns(self.unwrapped_model)],
            logger=self.logger,
        )
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        self.logger.info("loaded checkpoint %s", filename)
        return checkpoint

    def save_checkpoint(
        self,
        out_dir: str | os.PathLike[str],
        filename: str,
        *,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        meta: Mapping[str, Any] | None = None,
        by_epoch: bool = True,
        update_pointer: bool = True,
        asynchronous: bool = False,
        background_sync: bool = False,
        file_client_args: Any = None,
        backend_args: Any = None,
    ) -> Path:
        """Write the run's state to ``out_dir/filename`` atomically (rank 0 only).

        Hooks see the checkpoint dict in ``before_save_checkpoint`` and may add to
        it. ``update_pointer`` moves ``work_dir/last_checkpoint`` to the new file.
        ``asynchronous=True`` returns once the state is copied; the file is written
        in the background (see :meth:`wait_for_checkpoint_writes`).
        ``background_sync=True`` returns once the file is written under a temp name;
        ``fsync``, the rename and the pointer follow in the background.

        Returns:
            The checkpoint's path.
        """
        if not isinstance(filename, str) or not filename:
            raise ValueError(f"`filename` must be a non-empty str, got {filename!r}")
        checkpoint = ckpt.collect_checkpoint(
            self,
            save_optimizer=save_optimizer,
            save_param_scheduler=save_param_scheduler,
            meta=meta,
        )
        self.call_hook("before_save_checkpoint", checkpoint=checkpoint)
        path = Path(out_dir, filename)
        return ckpt.write_checkpoint(
            self,
            checkpoint,
            path,
            update_pointer=update_pointer,
            asynchronous=asynchronous,
            background_sync=background_sync,
        )
