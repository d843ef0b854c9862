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


def prior_median(prior: tfc.NoisyDeepFactorized, search_range: float = 4096.0,
                 points: int = 64, rounds: int = 5) -> tf.Tensor:
    """Each channel's median of the prior's underlying `DeepFactorized`
    density (the zero of its cumulative's logits), by a vectorised search.

    tfc finds the same point with `helpers.estimate_tails`, an Adam loop of
    100-200 iterations, each a forward and a backward pass of the density:
    called on every training step with `quantization="mixed"`, that loop was
    ~30 % of a step (1,332 small matmuls). Here each of `rounds` rounds
    evaluates the monotone logits at `points` values per channel and keeps
    the interval holding the sign change: with the defaults, an interval of
    `2 * search_range / 63**5`, 8e-6. A median outside
    `[-search_range, search_range]` comes back clipped to its end.

    Returns:
      float32 `[num_filters]`, no gradient.
    """
    density = prior.base
    channels = density.batch_shape.num_elements()
    low = tf.fill((channels,), -search_range)
    step = tf.fill((channels,), 2.0 * search_range / (points - 1))
    grid = tf.range(points, dtype=tf.float32)[:, None]
    for _ in range(rounds):
        values = low + grid * step  # [points, channels]
        logits = density._logits_cumulative(values)  # pylint: disable=protected-access
        below = tf.reduce_sum(tf.cast(logits < 0, tf.int32), axis=0)
        first = tf.cast(tf.clip_by_value(below - 1, 0, points - 2), tf.float32)
        low += first * step
        step /= points - 1
    return tf.stop_gradient(low + step * (points - 1) / 2)


def quantization_offset(prior: tfc.NoisyDeepFactorized) -> tf.Tensor:
    """Offsets of each channel's rounding grid, in `[-0.5, 0.5]`: the
    prior's median minus its nearest integer, so that one quantisation bin
    is centred on the median (tfc's offset heuristic, computed with
    `prior_median`). float32 `[num_filters]`, no gradient."""
    median = prior_median(prior)
    return median - tf.round(median)


# Bits of probability resolution in the range coder's tables. tfc's default,
# 12, gives every symbol in a table at least 2**-12 of the probability, so a
# latent that is nearly always 0 costs ~0.001 bit where the model's estimate
# says ~0: on Kodak, q0's files were 0.56 % (211 bits an image) over the
# estimate, and 0.045 % at 16 bits, the range coder's maximum
# (results/coding/range_coder_precision.json). Models exported before
# this record no precision and coded at 12, which their graphs keep.
RANGE_CODER_PRECISION = 16
LEGACY_RANGE_CODER_PRECISION = 12


def make_entropy_model(prior, compression: bool, quantization_offset=None,
                       range_coder_precision: int = RANGE_CODER_PRECISION):
    """Entropy model over latents of shape `[..., h, w, num_filters]`.

    Args:
      prior: the prior from `make_prior`.
      compression: False for training (no range-coding tables, works under
        gradient tape); True to build the integer CDF tables that `compress`
        and `decompress` use. Tables are built once, from the prior's current
        weights, so build with True only after training.
      quantization_offset: optional float32 `[num_filters]` offsets for
        `quantize` (e.g. from `quantization_offset`); by default tfc's
        heuristic computes them, on every `quantize` when `compression` is
        False.
      range_coder_precision: bits of the range coder's probabilities, 12 to
        16 (only used when `compression` is True; it is part of the
        bitstream: a file decodes only at the precision it was coded at).

    Returns:
      A `tfc.ContinuousBatchedEntropyModel` with coding rank 3.
    """
    if not LEGACY_RANGE_CODER_PRECISION <= range_coder_precision <= 16:
        raise ValueError(f"range_coder_precision must be 12 to 16 bits, got"
                         f" {range_coder_precision!r}")
    return tfc.ContinuousBatchedEntropyModel(
        prior, coding_rank=3, compression=compression,
        quantization_offset=quantization_offset,
        range_coder_precision=range_coder_precision)


def bits_per_pixel(bits, num_pixels):
    """Total bits divided by pixel count (height x width, all images)."""
    return tf.reduce_sum(bits) / tf.cast(num_pixels, bits.dtype)
