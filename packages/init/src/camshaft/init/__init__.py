"""camshaft.init — weight initializers and safe checkpoint reading.

Usable alone (``pip install camshaft-init`` needs only camshaft-registry and torch):

* initializers by config, with MMEngine's ``init_cfg`` rules (``layer`` matching by
  class name or direct base class name, ``override`` for named children, later cfgs
  win): :func:`initialize` and the ``*Init`` classes registered in
  :data:`WEIGHT_INITIALIZERS` under short and long names (``'Kaiming'``, ``'KaimingInit'``);
* the same as plain functions (:func:`kaiming_init`, :func:`constant_init`, ...);
* :class:`PretrainedInit` and :func:`load_checkpoint`: local paths, ``file://`` and
  ``http(s)://`` (cached, hash-checked), ``.pth`` read with ``weights_only=True`` and
  memory-mapped, ``.safetensors`` through the optional extra;
* :func:`record_init` / :func:`update_init_info`: which initializer set each
  parameter last, for the init report that ``camshaft.model`` prints.

Example:
    >>> from torch import nn
    >>> from camshaft.init import initialize
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Linear(8, 2))
    >>> initialize(net, [dict(type='Kaiming', layer='Conv2d'),
    ...                  dict(type='Constant', layer='Linear', val=0.0)])
    >>> float(net[2].weight.detach().abs().sum())
    0.0
"""

from camshaft.init._base_init import BaseInit
from camshaft.init._checkpoint import load_checkpoint
from camshaft.init._checkpoint_io import read_checkpoint
from camshaft.init._errors import (
    CheckpointDownloadError,
    CheckpointError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
)
from camshaft.init._fetch import fetch_checkpoint, get_checkpoint_cache_dir
from camshaft.init._functional import (
    bias_init_with_prob,
    caffe2_xavier_init,
    constant_init,
    kaiming_init,
    normal_init,
    trunc_normal_,
    trunc_normal_init,
    uniform_init,
    xavier_init,
)
from camshaft.init._init_info import InitRecord, record_init, update_init_info
from camshaft.init._initialize import InitCfgWarning, initialize
from camshaft.init._initializers import (
    Caffe2XavierInit,
    ConstantInit,
    KaimingInit,
    NormalInit,
    TruncNormalInit,
    UniformInit,
    XavierInit,
)
from camshaft.init._pretrained import PretrainedInit
from camshaft.init._registry import WEIGHT_INITIALIZERS
from camshaft.init._state_dict import IncompatibleKeys, load_state_dict

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "WEIGHT_INITIALIZERS",
    "initialize",
    "InitCfgWarning",
    "BaseInit",
    "ConstantInit",
    "XavierInit",
    "NormalInit",
    "TruncNormalInit",
    "UniformInit",
    "KaimingInit",
    "Caffe2XavierInit",
    "constant_init",
    "xavier_init",
    "normal_init",
    "trunc_normal_",
    "trunc_normal_init",
    "uniform_init",
    "kaiming_init",
    "caffe2_xavier_init",
    "bias_init_with_prob",
    "InitRecord",
    "record_init",
    "update_init_info",
    "PretrainedInit",
    "load_checkpoint",
    "load_state_dict",
    "IncompatibleKeys",
    "read_checkpoint",
    "fetch_checkpoint",
    "get_checkpoint_cache_dir",
    "CheckpointError",
    "UnsafeCheckpointError",
    "CheckpointNotFoundError",
    "CheckpointDownloadError",
]
