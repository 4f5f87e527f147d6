# Train a small CNN on scikit-learn's digits: `camshaft train examples/digits/config.py`.
# Every part of the stack, configured the way a user would.
custom_imports = dict(imports=["digits_demo"], allow_failed_imports=False)

model = dict(
    type="DigitsCNN",
    width=16,
    init_cfg=[
        dict(type="Kaiming", layer="Conv2d"),
        dict(type="Constant", layer="BatchNorm2d", val=1),
    ],
    data_preprocessor=dict(
        type="ImgDataPreprocessor",
        mean=[127.5],
        std=[127.5],
        batch_augments=dict(
            type="RandomBatchAugment",
            augments=[
                dict(type="MixUp", alpha=0.2, num_classes=10),
                dict(type="CutMix", alpha=1.0, num_classes=10),
            ],
            probs=[0.25, 0.25],
        ),
    ),
)

train_dataloader = dict(
    dataset=dict(type="Digits", split="train"),
    batch_size=64,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
)
val_dataloader = dict(
    dataset=dict(type="Digits", split="val"),
    batch_size=120,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
)
val_evaluator = dict(type="DigitsAccuracy")

max_epochs = 20
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()

optim_wrapper = dict(
    optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)
param_scheduler = [
    dict(
        type="LinearLR", start_factor=0.1, by_epoch=True, begin=0, end=2, convert_to_iter_based=True
    ),
    dict(
        type="CosineAnnealingLR",
        by_epoch=True,
        begin=2,
        end=max_epochs,
        T_max=max_epochs - 2,
        convert_to_iter_based=True,
    ),
]

default_hooks = dict(
    checkpoint=dict(interval=5, max_keep_ckpts=2, save_best="auto"),
    logger=dict(interval=10),
)
custom_hooks = [dict(type="EMAHook", momentum=0.05)]

randomness = dict(seed=0)
work_dir = "work_dirs/digits"

# `camshaft test examples/digits/config.py --checkpoint <best checkpoint>` evaluates here.
test_dataloader = val_dataloader
test_cfg = dict()
test_evaluator = val_evaluator
