"""camshaft.model — the model contracts that libraries depend on.

A model declares *what* it computes; the engine (camshaft.runner) decides *when*:

* :class:`BaseModule` — ``init_cfg`` (applied by ``init_weights()``, children's own
  ``init_weights`` win, ``Pretrained`` last), a per-parameter init report, and
  materialisation of models built on the ``meta`` device (``init_weights(device=...)``);
  :class:`Sequential`, :class:`ModuleList`, :class:`ModuleDict` take ``init_cfg`` too.
* :class:`BaseModel` — ``forward(..., mode='loss'|'predict'|'tensor')``, ``train_step``,
  ``val_step``, ``test_step`` and ``parse_losses``, typed against
  :class:`OptimWrapperProtocol` so this package never imports optimizer code.
* :class:`BaseDataPreprocessor` — moves batches of any nesting to the model's device.
* Weight averaging (:class:`ExponentialMovingAverage`, :class:`MomentumAnnealingEMA`,
  :class:`StochasticWeightAverage`) and SyncBatchNorm conversion.

Importing it costs camshaft.init and torch, nothing heavier (no torch.distributed).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from camshaft.model import BaseModel
    >>> class Net(BaseModel):
    ...     def __init__(self) -> None:
    ...         super().__init__(init_cfg=dict(type='Kaiming', layer='Linear'))
    ...         self.fc = nn.Linear(4, 2)
    ...     def forward(self, inputs, labels=None, mode='tensor'):
    ...         logits = self.fc(inputs)
    ...         if mode == 'loss':
    ...             return dict(loss=nn.functional.cross_entropy(logits, labels))
    ...         return logits if mode == 'tensor' else list(logits.argmax(1))
    >>> net = Net()
    >>> net.init_weights()
    >>> net.val_step((torch.zeros(3, 4),))[0].shape
    torch.Size([])
"""

from camshaft.model._averaged_model import (
    BaseAveragedModel,
    ExponentialMovingAverage,
    MomentumAnnealingEMA,
    StochasticWeightAverage,
)
from camshaft.model._base_model import BaseModel
from camshaft.model._base_module import BaseModule
from camshaft.model._containers import ModuleDict, ModuleList, Sequential
from camshaft.model._data_preprocessor import BaseDataPreprocessor
from camshaft.model._init_report import InitReportEntry, format_init_report
from camshaft.model._protocols import OptimWrapperProtocol
from camshaft.model._registry import MODELS
from camshaft.model._sync_batchnorm import convert_sync_batchnorm, revert_sync_batchnorm
from camshaft.model._utils import stack_batch

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "MODELS",
    "BaseModule",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "InitReportEntry",
    "format_init_report",
    "BaseModel",
    "BaseDataPreprocessor",
    "OptimWrapperProtocol",
    "stack_batch",
    "BaseAveragedModel",
    "ExponentialMovingAverage",
    "MomentumAnnealingEMA",
    "StochasticWeightAverage",
    "convert_sync_batchnorm",
    "revert_sync_batchnorm",
]
