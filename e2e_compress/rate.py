"""The factorized prior, its entropy model, and bits -> bits per pixel.

The prior is `tfc.NoisyDeepFactorized`: one learned univariate density per
latent channel, convolved with a unit-width uniform so that it models the
noisy latents used in training. The entropy model sums the information content
over the last three axes (height, width, channels) of the latents, so `bits`
is a total per image.
"""

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc


def make_prior(num_filters: int) -> tfc.NoisyDeepFactorized:
    """A factorized density with one deep univariate density per channel."""
    return tfc.NoisyDeepFactorized(batch_shape=(num_filters,))


def narrowed_first_layer(raw: np.ndarray, factor: float) -> np.ndarray:
    """New values for the prior's `matrix_0` variables: the density `factor`
    times narrower.

    `tfc.DeepFactorized`'s first layer weighs its input by `softplus(raw)`;
    the returned values give weights `factor` times larger, so the
    cumulative at `x` becomes the old one at `factor·x`. float `raw` of any
    shape; `factor` > 0.
    """
    weights = np.logaddexp(0.0, raw) * factor  # softplus
    return weights + np.log(-np.expm1(-weights))  # its inverse


def make_entropy_model(prior, compression: bool):
    """Entropy model over latents of shape `[..., h, w, num_filters]`.

    Args:
      prior: the prior from `make_prior`.
      compression: False for training (no range-coding tables, works under
        gradient tape); True to build the integer CDF tables that `compress`
        and `decompress` use. Tables are built once, from the prior's current
        weights, so build with True only after training.

    Returns:
      A `tfc.ContinuousBatchedEntropyModel` with coding rank 3.
    """
    return tfc.ContinuousBatchedEntropyModel(
        prior, coding_rank=3, compression=compression)


def bits_per_pixel(bits, num_pixels):
    """Total bits divided by pixel count (height x width, all images)."""
    return tf.reduce_sum(bits) / tf.cast(num_pixels, bits.dtype)
