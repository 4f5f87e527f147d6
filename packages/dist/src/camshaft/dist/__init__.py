"""camshaft.dist — communication helpers and distributed model wrappers on torch.distributed.

camshaft runs on ``torch.distributed`` and torchrun, never on a launcher or a
collective of its own. This package adds what a training engine needs on top:

* who am I: :func:`get_rank`, :func:`get_world_size`, :func:`get_local_rank`,
  :func:`get_dist_info`, :func:`is_main_process`, :func:`master_only`, ...;
* collectives that move tensors to the backend's device and back
  (:func:`all_reduce`, :func:`all_gather`, :func:`broadcast`, ...), object
  collectives, :func:`sync_random_seed` and :func:`collect_results`;
* :func:`init_dist`, which joins the group that torchrun, srun or mpirun started;
* model wrappers the runner's loops can drive: :class:`MMDistributedDataParallel`,
  :class:`MMSeparateDistributedDataParallel` (GANs),
  :class:`MMFullyShardedDataParallel` (FSDP2), all in :data:`MODEL_WRAPPERS`, and
  :func:`is_model_wrapper`.

Everything answers for a single process too (rank 0 of 1; collectives leave the data
as it is), so code written for a distributed job needs no branches without one.

Example:
    >>> import torch
    >>> from camshaft.dist import all_reduce, get_dist_info
    >>> get_dist_info()
    (0, 1)
    >>> total = torch.tensor([3.0])
    >>> all_reduce(total)  # one process: nothing to add
    >>> total
    tensor([3.])
"""

from camshaft.dist._collect import collect_results
from camshaft.dist._comm import (
    all_gather,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    sync_random_seed,
)
from camshaft.dist._ddp import MMDistributedDataParallel
from camshaft.dist._errors import LaunchError
from camshaft.dist._fsdp import MMFullyShardedDataParallel
from camshaft.dist._launch import init_dist
from camshaft.dist._registry import MODEL_WRAPPERS
from camshaft.dist._separate_ddp import MMSeparateDistributedDataParallel
from camshaft.dist._utils import (
    get_backend,
    get_comm_device,
    get_dist_info,
    get_local_rank,
    get_local_size,
    get_rank,
    get_world_size,
    is_distributed,
    is_main_process,
    master_only,
)
from camshaft.dist._wrapper_utils import is_model_wrapper

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # who am I
    "is_distributed",
    "get_rank",
    "get_world_size",
    "get_local_rank",
    "get_local_size",
    "get_dist_info",
    "is_main_process",
    "master_only",
    "get_backend",
    "get_comm_device",
    # collectives
    "barrier",
    "all_reduce",
    "all_gather",
    "all_gather_object",
    "broadcast",
    "broadcast_object_list",
    "sync_random_seed",
    "collect_results",
    # launching
    "init_dist",
    "LaunchError",
    # model wrappers
    "MODEL_WRAPPERS",
    "MMDistributedDataParallel",
    "MMSeparateDistributedDataParallel",
    "MMFullyShardedDataParallel",
    "is_model_wrapper",
]
