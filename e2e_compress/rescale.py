"""Warm-starting at another λ by rescaling a trained model's latents.

A model warm-started from its neighbour at a lower λ must move its rate down
the curve, and it moves slowly: the 192-filter q4 trained 1,500 steps at the
λ of q3 still coded Kodak at 0.516 bpp, where the 128-filter q3 sits at 0.486.
Multiplying the latents by a factor `s < 1` before rounding coarsens the
quantisation (a step of `1/s` in the old units) and moves the model down its
own rate-distortion curve at once; training then starts there.

The change keeps the model's function for unquantised latents exactly:

- the analysis transform's last convolution (no bias) is multiplied by `s`,
  so the latents are `s·y`;
- the synthesis transform's first convolution is divided by `s`, so
  `g_s(s·y)` with the new weights equals `g_s(y)` with the old;
- each channel's prior is the density of `s·y`: the first layer of
  `tfc.DeepFactorized`'s cumulative (weights `softplus(matrix_0)`) is divided
  by `s`. The uniform noise the prior is convolved with keeps its unit width,
  so the noisy density is that of `s·y + u`, which is what training models.

All three are linear in the stored variables, in both kernel
parameterisations (the RDFT coefficients and spatial kernels).
"""

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc

from e2e_compress import rate


def rescale_latents(model, scale: float) -> None:
    """Multiplies `model`'s latents by `scale`, in place.

    Args:
      model: a built `BLS2017Model` (training or inference layers).
      scale: float > 0, the factor on the latents. Below 1 the model codes
        fewer bits with more distortion (use it to warm-start a lower λ),
        above 1 the reverse.

    Raises:
      ValueError: `scale` is not a positive finite number, or the model does
        not have the layers this module expects.
    """
    if not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    scale = float(scale)
    _scale_kernel(_convolutions(model.analysis_transform)[-1], scale)
    _scale_kernel(_convolutions(model.synthesis_transform)[0], 1.0 / scale)
    matrices = [v for v in model.prior.variables
                if v.name.split(":")[0].endswith("matrix_0")]
    if len(matrices) != 1:
        raise ValueError(
            f"expected one prior variable named matrix_0, found "
            f"{[v.name for v in model.prior.variables]}")
    matrices[0].assign(rate.narrowed_first_layer(matrices[0].numpy(), 1.0 / scale))


def _convolutions(transform) -> list:
    convolutions = [layer for layer in transform.layers
                    if isinstance(layer, tfc.SignalConv2D)]
    if not convolutions:
        raise ValueError(f"{transform.name} has no convolutions")
    return convolutions


def _scale_kernel(convolution, factor: float) -> None:
    """Multiplies the layer's kernel (its RDFT coefficients, or the spatial
    kernel, whichever variables hold it) by `factor`; not the bias, nor an
    activation's variables."""
    kernels = [v for v in convolution.variables
               if v.name.split(":")[0].split("/")[-1].startswith("kernel")]
    if not kernels:
        raise ValueError(f"{convolution.name} has no kernel variables: "
                         f"{[v.name for v in convolution.variables]}")
    for variable in kernels:
        variable.assign(variable * tf.cast(factor, variable.dtype))
