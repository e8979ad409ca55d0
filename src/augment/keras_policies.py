"""`aug.implementation=keras`: Keras 3's own `RandAugment` and `AugMix`, as Keras defines them.

For comparison with augsweep's policies (`src.augment.policies`, the default), whose docstring says
why they are the default: Keras's `factor` is not a magnitude that grows from an identity (at
factor 0 Keras's RandAugment still solarises and posterises), its RandAugment draws one op set per
batch, and its AugMix draws its ops with Python's `random` when traced. Here `aug.strength` is
Keras's `factor` and `aug.num_ops` its `num_ops` (RandAugment) or `chain_depth` (AugMix), and
`aug.exclude` takes Keras's own op names. The only change to Keras's classes is `exclude`.
"""

from __future__ import annotations

from typing import Any

import keras
from keras.src.layers.preprocessing.image_preprocessing.aug_mix import AUGMENT_LAYERS_ALL

KERAS_POLICY_OPS: dict[str, list[str]] = {
    "randaugment": list(keras.layers.RandAugment._AUGMENT_LAYERS),
    "augmix": list(AUGMENT_LAYERS_ALL),
}


def _kept(accepted: list[str], exclude: Any) -> list[str]:
    unknown = [name for name in exclude if name not in accepted]
    if unknown:
        raise ValueError(
            f"Invalid value received for argument `exclude`. Expected names from "
            f"{', '.join(accepted)}. Received: exclude={list(exclude)!r}"
        )
    return [name for name in accepted if name not in exclude]


@keras.saving.register_keras_serializable(package="augsweep")
class KerasRandAugment(keras.layers.RandAugment):
    """`keras.layers.RandAugment` without the ops named in `exclude` (Keras's op names)."""

    def __init__(self, exclude: tuple[str, ...] | list[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exclude = list(exclude)
        self._AUGMENT_LAYERS = _kept(KERAS_POLICY_OPS["randaugment"], self.exclude)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "exclude": list(self.exclude)}


@keras.saving.register_keras_serializable(package="augsweep")
class KerasAugMix(keras.layers.AugMix):
    """`keras.layers.AugMix` (all ops) without the ops named in `exclude`."""

    def __init__(self, exclude: tuple[str, ...] | list[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exclude = list(exclude)
        self._augment_layers = _kept(KERAS_POLICY_OPS["augmix"], self.exclude)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "exclude": list(self.exclude)}


def keras_policy(
    policy: str, strength: float, num_ops: int, exclude: list[str], seed: int, **augmix: Any
) -> keras.layers.Layer:
    """Keras's layer for `policy`, images in [0, 1]; `augmix`: AugMix's `num_chains` and
    `alpha`, checked (`src.augment.resolve`)."""
    common = {"value_range": (0, 1), "factor": strength, "seed": seed, "exclude": exclude}
    if policy == "randaugment":
        return KerasRandAugment(num_ops=num_ops, name="randaugment", **common)
    return KerasAugMix(
        chain_depth=num_ops,
        num_chains=int(augmix["num_chains"]),
        alpha=float(augmix["alpha"]),
        name="augmix",
        **common,
    )
