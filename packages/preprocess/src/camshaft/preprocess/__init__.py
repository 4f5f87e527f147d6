"""camshaft.preprocess: turn DataLoader batches into model inputs on the device.

The point, in the words of MMEngine's model tutorial: move the data to the device while
it is still ``uint8`` (a quarter of the bytes of float32), then normalise it there; and
do the augmentations that need several images at once (MixUp, CutMix) on the batch,
not in the per-image transform.

* :class:`ImgDataPreprocessor` — move, swap channels, normalise, pad and stack image
  batches; apply batch augments when training. Registered in ``camshaft.model.MODELS``.
* :class:`MixUp`, :class:`CutMix`, :class:`RandomBatchAugment` — batch augments,
  registered in ``MODELS`` too, so configs can name them.
* :func:`pseudo_collate`, :func:`default_collate` — collate functions for the
  DataLoader, the first keeping images of different sizes apart for the preprocessor
  to pad.

Example:
    >>> import torch
    >>> from camshaft.preprocess import ImgDataPreprocessor
    >>> preprocessor = ImgDataPreprocessor(mean=[127.5], std=[127.5],
    ...                                    batch_augments=dict(type='MixUp', alpha=0.8))
    >>> images = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    >>> soft = torch.eye(10)[:4]
    >>> images, labels = preprocessor((images, soft), training=True)
    >>> images.dtype, tuple(labels.shape)
    (torch.float32, (4, 10))
"""

from camshaft.preprocess._collate import default_collate, pseudo_collate
from camshaft.preprocess._cutmix import CutMix
from camshaft.preprocess._img_data_preprocessor import ImgDataPreprocessor
from camshaft.preprocess._mixup import MixUp
from camshaft.preprocess._random_batch_augment import RandomBatchAugment

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "ImgDataPreprocessor",
    "MixUp",
    "CutMix",
    "RandomBatchAugment",
    "pseudo_collate",
    "default_collate",
]
