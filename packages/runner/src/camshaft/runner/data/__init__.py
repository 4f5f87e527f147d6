"""The data layer the Runner trains from: resumable samplers and dataloader building.

* :class:`DefaultSampler` — per-rank shards of a per-epoch shuffle (MMEngine's
  semantics), with a consumed position for exact mid-epoch resume;
* :class:`InfiniteSampler` — an endless per-rank stream for iteration-based
  training, with the same resumable position;
* :func:`build_dataloader` — a DataLoader from a config dict (dataset and sampler
  from the registries, collate function by name, seeded workers);
* :func:`worker_init_fn` — deterministic per-worker seeding.

The position contract: the sampler cannot see what the model consumed (workers
prefetch), so the training loop calls ``sampler.advance(batch_size)`` after each
batch it consumed and saves ``sampler.state_dict()`` in the checkpoint; on resume,
``sampler.load_state_dict(state)`` makes the next ``iter(loader)`` start there.

Example:
    >>> from torch.utils.data import DataLoader
    >>> sampler = DefaultSampler(range(8), seed=0, rank=0, world_size=1)
    >>> loader = DataLoader(range(8), batch_size=2, sampler=sampler)
    >>> first = next(iter(loader)); sampler.advance(2)
    >>> resumed = DefaultSampler(range(8), seed=123, rank=0, world_size=1)
    >>> resumed.load_state_dict(sampler.state_dict())
    >>> resumed.epoch_indices()[2:] == list(resumed)
    True
"""

from camshaft.runner.data._build import build_dataloader
from camshaft.runner.data._default_sampler import DefaultSampler
from camshaft.runner.data._infinite_sampler import InfiniteSampler
from camshaft.runner.data._worker_seed import worker_init_fn

__all__ = [
    "DefaultSampler",
    "InfiniteSampler",
    "build_dataloader",
    "worker_init_fn",
]
