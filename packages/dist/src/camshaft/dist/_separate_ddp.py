"""``MMSeparateDistributedDataParallel``: one DDP per trainable child, for GANs and the like.

A GAN updates its generator and its discriminator in turns, each with its own
optimizer, inside its own ``train_step``. One DDP around the whole model cannot work:
DDP expects every parameter to receive a gradient in each backward pass, and the
discriminator's step leaves the generator without one. So this wrapper wraps each
*direct child* that has trainable parameters in its own
:class:`~camshaft.dist.MMDistributedDataParallel`, in place, and moves the other
children (the data preprocessor, frozen networks) to the device unwrapped. The
model's own ``train_step`` then runs unchanged: ``self.generator(...)`` now goes
through a DDP and synchronises the generator's gradients.

Unlike MMEngine's class of the same name, this one is a plain ``nn.Module``, not a
``DistributedDataParallel`` whose constructor is skipped: no half-built DDP
attributes to trip over. ``is_model_wrapper`` recognises it through the registry.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, cast

from torch import nn

from camshaft.dist._ddp import MMDistributedDataParallel
from camshaft.dist._registry import MODEL_WRAPPERS
from camshaft.dist._utils import get_comm_device
from camshaft.dist._wrapper_utils import check_wrappable, is_model_wrapper

__all__ = ["MMSeparateDistributedDataParallel"]


@MODEL_WRAPPERS.register_module()
class MMSeparateDistributedDataParallel(nn.Module):
    """Wrap each trainable child of ``module`` in its own ``MMDistributedDataParallel``.

    Every direct child with at least one parameter that requires a gradient is
    moved to the device the default process group communicates through (the current
    CUDA device under NCCL, the CPU under gloo) and replaced, in ``module`` itself, by an
    ``MMDistributedDataParallel`` around it; the other children are only moved.
    ``train_step``, ``val_step`` and ``test_step`` call the model's own, which now
    reach the wrapped children.

    Args:
        module: The model, usually a ``camshaft.model.BaseModel`` whose
            ``train_step`` drives its children with an ``OptimWrapperDict``. It must
            not be wrapped already.
        broadcast_buffers: Passed to each child's DDP. Defaults to False (a GAN's
            buffers are usually per-rank statistics).
        find_unused_parameters: Passed to each child's DDP.
        **kwargs: Passed to each child's ``MMDistributedDataParallel``
            (``device_ids``, ``detect_anomalous_params``, ...).

    Raises:
        TypeError: ``module`` is not an ``nn.Module`` or is already a model wrapper.
        RuntimeError: no default process group exists.

    Example:
        >>> # after init_dist('pytorch'), in every process:
        >>> gan = MMSeparateDistributedDataParallel(gan_model)  # doctest: +SKIP
        >>> gan.module.generator  # now an MMDistributedDataParallel  # doctest: +SKIP
        >>> log_vars = gan.train_step(batch, optim_wrapper_dict)  # doctest: +SKIP
    """

    def __init__(
        self,
        module: nn.Module,
        broadcast_buffers: bool = False,
        find_unused_parameters: bool = False,
        **kwargs: Any,
    ) -> None:
        check_wrappable(module, type(self).__name__)
        super().__init__()
        device = get_comm_device()
        for name, child in list(module.named_children()):
            if is_model_wrapper(child):
                continue
            child = child.to(device)
            if any(param.requires_grad for param in child.parameters()):
                with warnings.catch_warnings():
                    # torch >= 2.13 deprecates `broadcast_buffers` in favour of
                    # `forward_sync_buffers`, which still syncs buffers at construction;
                    # False here keeps MMEngine's meaning (no sync at all), so the
                    # warning about our own default is not the user's to act on.
                    warnings.filterwarnings(
                        "ignore",
                        message=".*`broadcast_buffers` is deprecated",
                        category=FutureWarning,
                    )
                    child = MMDistributedDataParallel(
                        module=child,
                        broadcast_buffers=broadcast_buffers,
                        find_unused_parameters=find_unused_parameters,
                        **kwargs,
                    )
            setattr(module, name, child)
        self.module = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped model; its wrapped children synchronise their own gradients."""
        return self.module(*args, **kwargs)

    def train_step(self, data: Any, optim_wrapper: Any) -> Any:
        """Return the model's own ``train_step(data, optim_wrapper)``.

        Args:
            data: The batch from the DataLoader.
            optim_wrapper: Usually an ``OptimWrapperDict`` with one wrapper per
                trainable child.

        Returns:
            What the model's ``train_step`` returns (its log variables).
        """
        return cast(Any, self.module).train_step(data, optim_wrapper)

    def val_step(self, data: Any) -> Any:
        """Return the model's own ``val_step(data)``."""
        return cast(Any, self.module).val_step(data)

    def test_step(self, data: Any) -> Any:
        """Return the model's own ``test_step(data)``."""
        return cast(Any, self.module).test_step(data)

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Skip gradient synchronisation in every wrapped child for forwards run inside.

        Children without a ``no_sync`` (those left unwrapped) are skipped.

        Yields:
            None; forwards in the block accumulate gradients locally.
        """
        with ExitStack() as stack:
            for child in self.module.children():
                no_sync = getattr(child, "no_sync", None)
                if callable(no_sync):
                    stack.enter_context(no_sync())
            yield
