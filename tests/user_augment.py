"""A user's own augmentation, as a test imports it by dotted path (`aug.target=...`)."""

import tensorflow as tf


def random_brightness(batch: tf.Tensor) -> tf.Tensor:
    """The classic Lambda-layer recipe: tf.image.random_brightness with max_delta 0.2."""
    return tf.image.random_brightness(batch, max_delta=0.2)


def standardise_channels(batch: tf.Tensor) -> tf.Tensor:
    """A buggy user recipe: standardises over the channel axis, which a univariate series
    has only one of, so every value becomes 0 / 0."""
    mean = tf.reduce_mean(batch, axis=-1, keepdims=True)
    return (batch - mean) / tf.math.reduce_std(batch, axis=-1, keepdims=True)
