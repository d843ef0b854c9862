"""Warm-starting a wider model from a trained narrower one.

The paper uses 128 filters at low rates and 192 at high rates. Training 192
filters from scratch on a CPU costs hours before it catches up with a
128-filter model warm-started from its neighbours, so a wider model starts
here from a narrower one, computing the same function (Net2Net-style):

- each variable of the wide model keeps its fresh initialisation, and the
  narrow model's values go into its leading block (the channel axes come
  first in every variable: kernels `[in, out, ...]` in tfc's RDFT
  parameterisation, GDN `beta [C]` and `gamma [C, C]`, biases `[C]`, the
  prior's per-channel parameters `[C, ...]`);
- kernel weights from new input channels into old output channels are zero,
  so the old channels compute exactly what they did: the GDN cross terms
  between old and new channels start at zero too, as fresh GDN `gamma` is
  diagonal;
- weights from old channels into new ones keep their random initialisation,
  so the new channels carry new features and their outgoing weights (zero)
  receive gradients from the first step;
- the new latent channels start at a tenth of their initial scale, and
  their prior densities are the narrow model's most peaked one (highest
  probability of a zero), narrowed `NEW_PRIOR_NARROWING` times more, so that
  a zero costs almost nothing. A fresh prior charges ~5 bits for every new
  latent: `bls2017-mse-q8` widened to 192 filters with fresh priors for the
  new channels spent +1.1 bpp over its first 250 training steps and was
  still +0.6 bpp over the 128-filter model on validation after 500. With
  the peaked priors, the widened q8 codes kodim23 at 0.9908 bpp against
  0.9904, at the same MSE.

Before any training step the wide model reconstructs the narrow model's
images exactly; its rate is nearly the same when the narrow prior has
peaked channels (a trained one), and higher when it has none.
"""

import numpy as np
import tensorflow as tf

from e2e_compress import rate

# The analysis transform's last layer writes the latents.
_LATENT_LAYER = "conv_2/"
NEW_LATENT_SCALE = 0.1
NEW_PRIOR_NARROWING = 10.0


def widen(wide, narrow) -> None:
    """Copies `narrow`'s weights into the wider `wide`, preserving its function.

    Args:
      wide: a built `BLS2017Model` with `num_filters` >= the narrow one's.
      narrow: a built `BLS2017Model` holding the trained weights.

    Raises:
      ValueError: the models do not have the same layers, or `wide` is
        narrower than `narrow` somewhere.
    """
    old_channels = narrow.prior.batch_shape.num_elements()
    peaked = int(np.argmax(narrow.prior.prob(tf.zeros([old_channels])).numpy()))
    for part in ("analysis_transform", "synthesis_transform", "prior"):
        new_vars = getattr(wide, part).variables
        old_vars = getattr(narrow, part).variables
        names = [_local_name(v.name) for v in new_vars]
        if names != [_local_name(v.name) for v in old_vars]:
            raise ValueError(
                f"{part}: the models' variables differ: "
                f"{[v.name for v in old_vars]} vs {[v.name for v in new_vars]}")
        for name, new, old in zip(names, new_vars, old_vars):
            value = _widened(name, new.numpy(), old.numpy())
            if part == "prior":
                value = _peaked_prior(name, value, old_channels, peaked)
            new.assign(value)


def _local_name(name: str) -> str:
    """'bls2017_model_1/analysis_transform/conv_2/kernel_real:0' ->
    'conv_2/kernel_real' (the model's own scope varies between instances)."""
    return "/".join(name.split(":")[0].split("/")[-2:])


def _widened(name: str, fresh: np.ndarray, old: np.ndarray) -> np.ndarray:
    if fresh.ndim != old.ndim or any(
            n < o for n, o in zip(fresh.shape, old.shape)):
        raise ValueError(
            f"cannot widen {name} of shape {list(old.shape)} to "
            f"{list(fresh.shape)}: every axis must stay or grow")
    value = fresh.copy()
    value[tuple(slice(0, d) for d in old.shape)] = old
    if "kernel_" in name:  # RDFT coefficients [in, out, k1, k2 // 2 + 1]
        old_in, old_out = old.shape[:2]
        value[old_in:, :old_out] = 0.0
        if name.startswith(_LATENT_LAYER):
            value[:, old_out:] *= NEW_LATENT_SCALE
    return value


def _peaked_prior(name: str, value: np.ndarray, old_channels: int,
                  peaked: int) -> np.ndarray:
    """New channels' rows [C, ...] of a `tfc.DeepFactorized` variable: the
    `peaked` channel's, with the first layer's (softplus-positive) weights
    scaled up so that the density is `NEW_PRIOR_NARROWING` times narrower."""
    row = value[peaked].copy()
    if name.endswith("/matrix_0"):
        row = rate.narrowed_first_layer(row, NEW_PRIOR_NARROWING)
    value[old_channels:] = row
    return value
