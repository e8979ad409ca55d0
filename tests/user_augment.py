"""A user's own augmentation, as a test imports it by dotted path (`aug.target=...`)."""

import tensorflow as tf


def random_brightness(batch: tf.Tensor) -> tf.Tensor:
    """The classic Lambda-layer recipe: tf.image.random_brightness with max_delta 0.2."""
    return tf.image.random_brightness(batch, max_delta=0.2)
