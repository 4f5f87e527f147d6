"""The model tutorial's weight-initialisation examples: ``ToyNet`` with ``init_cfg``.

From the seeds' "BaseModule" section (model-tutorial-zh.md; model-tutorial-zh-early.md
has the same examples, with ``class ToyConv:`` missing its ``nn.Module`` base, which the
later version fixes). Each example is one function holding the seed's code: its own
``ToyNet``, built, then ``init_weights()``. Changed from the seed: the imports, and the
pretrained checkpoint is written into a folder of our choosing instead of ``./``.

``main`` prints, for every example, what set each parameter (camshaft logs only a
one-line summary at INFO, where MMEngine printed this table; see MIGRATING.md).

Run:
    python init_examples.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

from camshaft.model import BaseModule, format_init_report


def load_pretrained(checkpoint_dir: str | os.PathLike[str]) -> BaseModule:
    """Load pretrained weights (``type='Pretrained'``) from a checkpoint saved first.

    Args:
        checkpoint_dir: Where ``pretrained.pth`` is written (the seed uses ``./``).

    Returns:
        The ``ToyNet`` initialised from the checkpoint.
    """

    class ToyNet(BaseModule):
        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.conv1 = nn.Linear(1, 1)

    # Save pretrained weights
    toy_net = ToyNet()
    torch.save(toy_net.state_dict(), os.path.join(checkpoint_dir, "pretrained.pth"))
    pretrained = os.path.join(checkpoint_dir, "pretrained.pth")

    # Configure loading the pretrained weights as the init method
    toy_net = ToyNet(init_cfg=dict(type="Pretrained", checkpoint=pretrained))
    # Load the weights
    toy_net.init_weights()
    return toy_net


def kaiming_conv_xavier_linear() -> BaseModule:
    """Different initialisers for different layer types: Kaiming for Conv2d, Xavier for Linear.

    Returns:
        The initialised ``ToyNet``.
    """

    class ToyNet(BaseModule):
        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.linear = nn.Linear(1, 1)
            self.conv = nn.Conv2d(1, 1, 1)

    toy_net = ToyNet(
        init_cfg=[dict(type="Kaiming", layer="Conv2d"), dict(type="Xavier", layer="Linear")],
    )
    toy_net.init_weights()
    return toy_net


def kaiming_layer_list() -> BaseModule:
    """One initialiser for a list of layer types: ``layer=['Conv2d', 'Linear']``.

    Returns:
        The initialised ``ToyNet`` (the one of :func:`kaiming_conv_xavier_linear`).
    """

    class ToyNet(BaseModule):
        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.linear = nn.Linear(1, 1)
            self.conv = nn.Conv2d(1, 1, 1)

    toy_net = ToyNet(init_cfg=[dict(type="Kaiming", layer=["Conv2d", "Linear"])])
    toy_net.init_weights()
    return toy_net


def override_by_name() -> BaseModule:
    """Finer-grained: ``override`` initialises the child ``conv2`` with Xavier instead.

    Returns:
        The initialised ``ToyNet``: ``conv1`` by Kaiming, ``conv2`` by Xavier.
    """

    class ToyNet(BaseModule):
        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.conv1 = nn.Conv2d(1, 1, 1)
            self.conv2 = nn.Conv2d(1, 1, 1)

    toy_net = ToyNet(
        init_cfg=[
            dict(type="Kaiming", layer=["Conv2d"], override=dict(name="conv2", type="Xavier")),
        ],
    )
    toy_net.init_weights()
    return toy_net


def custom_init_weights() -> BaseModule:
    """A child with its own ``init_weights``: ``ToyConv`` sets its parameters to 1 and 0.

    Returns:
        The initialised ``ToyNet``; its ``custom_conv`` was set by ``ToyConv.init_weights``.
    """

    class ToyConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.custom_weight = nn.Parameter(torch.empty(1, 1, 1, 1))
            self.custom_bias = nn.Parameter(torch.empty(1))

        def init_weights(self):
            with torch.no_grad():
                self.custom_weight = self.custom_weight.fill_(1)
                self.custom_bias = self.custom_bias.fill_(0)

    class ToyNet(BaseModule):
        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.conv1 = nn.Conv2d(1, 1, 1)
            self.conv2 = nn.Conv2d(1, 1, 1)
            self.custom_conv = ToyConv()

    toy_net = ToyNet(
        init_cfg=[
            dict(type="Kaiming", layer=["Conv2d"], override=dict(name="conv2", type="Xavier")),
        ],
    )
    toy_net.init_weights()
    return toy_net


EXAMPLES: dict[str, Callable[[], BaseModule]] = {
    "kaiming_conv_xavier_linear": kaiming_conv_xavier_linear,
    "kaiming_layer_list": kaiming_layer_list,
    "override_by_name": override_by_name,
    "custom_init_weights": custom_init_weights,
}
"""The examples that need no argument, by name (``load_pretrained`` needs a folder)."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see ``--help``).

    Args:
        argv: The arguments, without the program name; None reads ``sys.argv``.

    Returns:
        The parsed options.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint-dir",
        help="where the Pretrained example writes pretrained.pth (default: a temporary "
        "folder, removed at exit)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="accepted for CI; these examples are already quick"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, BaseModule]:
    """Run every example and print what set each parameter.

    Args:
        argv: Command-line arguments (see :func:`parse_args`); None reads ``sys.argv``.

    Returns:
        The initialised ``ToyNet`` of each example, by name: ``'load_pretrained'`` and
        the keys of :data:`EXAMPLES`.
    """
    args = parse_args(argv)
    models: dict[str, BaseModule] = {}
    with tempfile.TemporaryDirectory() as scratch:
        models["load_pretrained"] = load_pretrained(args.checkpoint_dir or scratch)
    for name, example in EXAMPLES.items():
        models[name] = example()
    for name, model in models.items():
        print(f"== {name}: what set each parameter ==")
        print(format_init_report(model.init_report()))
    return models


if __name__ == "__main__":
    main()
