"""Data augmentation: the op/strength table and the Keras layers built from an aug config.

`registry` holds `OPS`, the single source of truth for what each op does and how hard it pushes
(magnitude = `aug.strength` x its magnitude at strength 1); `resolve` checks a config
(conf/aug/*.yaml) and reads it against that table; `build` turns it into the layers that augment
training batches, in the model (`aug.placement=model`) or in the tf.data pipeline (`dataset`);
`plan` puts those layers where the config says. Batch-mixing ops (mixup, cutmix) always run in
the pipeline, since they mix labels. Add an op by adding an `Op` to `OPS`.

This module re-exports the names callers use, so `from src.augment import ...` stays the API.
"""

from src.augment.build import build_augmentation, build_mixing
from src.augment.layers import (
    BrightnessScale,
    ChannelShift,
    Jitter,
    RandomApply,
    Scaling,
    TrainingOnly,
)
from src.augment.registry import FILL_MODES, MODALITIES, OPS, Literature, Op, Param, strength_table
from src.augment.resolve import (
    DEFAULT_NUM_OPS,
    IMPLEMENTATIONS,
    PLACEMENTS,
    aug_label,
    placement,
    policy_ops,
    resolve_ops,
)

__all__ = [
    "DEFAULT_NUM_OPS", "FILL_MODES", "IMPLEMENTATIONS", "MODALITIES", "OPS", "PLACEMENTS",
    "BrightnessScale", "ChannelShift", "Jitter", "Literature", "Op", "Param", "RandomApply",
    "Scaling", "TrainingOnly", "aug_label", "build_augmentation", "build_mixing", "placement",
    "policy_ops", "resolve_ops", "strength_table",
]  # fmt: skip
