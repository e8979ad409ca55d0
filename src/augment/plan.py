"""Where a run's augmentation happens: layers in the model or maps in the training pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from src.augment import build_augmentation, build_mixing, placement
from src.augment.image import mix_batch


@dataclass(frozen=True)
class Plan:
    """The augmentation of one fold.

    Per-sample ops sit at the front of the model (`placement=model`) or are mapped over training
    batches (`placement=dataset`); a mixing op (mixup, cutmix) is always mapped over training
    batches, as it mixes labels too. Validation and test batches are never touched.
    """

    layers: keras.Sequential | None
    mixing: keras.layers.Layer | None
    placement: str
    n_classes: int

    @classmethod
    def build(cls, aug_cfg: Any, modality: str, n_classes: int, seed: int) -> Plan:
        return cls(
            build_augmentation(aug_cfg, modality, seed),
            build_mixing(aug_cfg, modality, seed),
            placement(aug_cfg),
            n_classes,
        )

    @property
    def in_model(self) -> keras.Sequential | None:
        return self.layers if self.placement == "model" else None

    @property
    def soft_labels(self) -> bool:
        """Mixing trains on soft labels: every pipeline then carries one-hot (or float) labels."""
        return self.mixing is not None

    def encode(self, batches: tf.data.Dataset) -> tf.data.Dataset:
        """Labels in the form the loss expects (validation and test batches)."""
        if not self.soft_labels:
            return batches
        return batches.map(lambda x, y: (x, self._soft(y)), num_parallel_calls=tf.data.AUTOTUNE)

    def _soft(self, y: tf.Tensor) -> tf.Tensor:
        if self.n_classes == 2:
            return tf.cast(tf.reshape(y, (-1, 1)), "float32")
        return tf.one_hot(y, self.n_classes, dtype="float32")

    def training(self, batches: tf.data.Dataset) -> tf.data.Dataset:
        """Training batches, augmented here where the plan says so."""
        if self.placement == "dataset" and self.layers is not None:
            layers = self.layers
            batches = batches.map(
                lambda x, y: (layers(x, training=True), y),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        if self.mixing is not None:
            mixing, n = self.mixing, self.n_classes
            batches = batches.map(lambda x, y: mix_batch(mixing, x, y, n))
        return batches.prefetch(tf.data.AUTOTUNE)

    def preview(self, x: np.ndarray) -> np.ndarray:
        """What training does to a batch: the per-sample ops, then mixing (labels dropped)."""
        out = self.layers(x, training=True) if self.layers is not None else x
        if self.mixing is not None:
            out, _ = mix_batch(self.mixing, out, np.zeros(len(x), dtype=np.int64), self.n_classes)
        return keras.ops.convert_to_numpy(out)
