"""Analysis and synthesis transforms of Balle et al. (2017).

Both are three stages of convolution. The analysis transform downsamples by
4, 2 and 2 (total stride 16) with GDN after the first two stages; the
synthesis transform mirrors it with inverse GDN and transposed (upsampling)
convolutions. Images enter as float32 `[B, H, W, 3]` in `[0, 255]` and leave
in the same range (not clipped); H and W must be multiples of 16 for the
shapes to match.

The convolutions are `tfc.SignalConv2D` with their kernels parameterised in
the Fourier domain (tfc's `kernel_parameter="rdft"`), which converges far
faster per step than plain kernels: measured here, after 400 steps the MSE was
470 against 1225 for Keras convolutions (0-255 scale, lmbda 0.013, 64 px
crops), and the Keras version needed ~4000 steps to get there.

tfc computes each kernel with `tf.signal.irfft2d` over in*out tiny 2-D
transforms, which on CPU costs more than the convolution itself (0.18 s of a
0.19 s forward+backward pass for a 5x5 128->128 layer at batch 8). The inverse
transform is linear, so `MatmulRDFTParameter` applies it as one small matrix
product instead: the same variables, the same kernels (to float rounding) and
checkpoints interchangeable with tfc's `RDFTParameter`.

The Fourier parameterisation only helps the optimiser. An exported model
holds each kernel in the spatial domain (`kernel_parameter="variable"`): the
same kernel in 25 numbers for 5x5 instead of 30 (81 instead of 90 for 9x9), a
sixth smaller on disk, and nothing to transform at inference.
`copy_weights` moves trained weights between the two parameterisations.

Spatial kernels can also be stored as float16 (`kernel_dtype="float16"`) and
cast to float32 when used, all arithmetic staying float32: the kernels are
nearly all of a model's weights, so this halves an exported model (a
192-filter model's variables from 15.8 to 8.2 MB). Measured on the 24 Kodak
images with the 192-filter q6: 1.37296 -> 1.37294 bpp, 35.4955 -> 35.4945
dB, loss bpp + lmbda * MSE +0.008 %.
"""

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc

TOTAL_STRIDE = 16
# How spatial kernels may be stored; computation is float32 either way.
KERNEL_DTYPES = ("float32", "float16")

class MatmulRDFTParameter(tfc.RDFTParameter):
    """tfc's RDFT kernel parameterisation, inverse transform as a matmul.

    Variables `real` and `imag` (float32 `[in, out, k1, k2 // 2 + 1]`) are
    those of `tfc.RDFTParameter`; calling returns the float32 kernel
    `[k1, k2, in, out]`, computed as `basis @ [real; imag]` where `basis`
    (`[k1 * k2, 2 * k1 * (k2 // 2 + 1)]`) holds the inverse RDFT of each unit
    coefficient, including tfc's normalisation.
    """

    def __init__(self, initial_value, name=None):
        super().__init__(initial_value, name=name)
        if self.shape.rank != 4:
            raise ValueError(
                f"expected a 2-D convolution kernel [k1, k2, in, out], got "
                f"shape {self.shape}")
        k1, k2 = int(self.shape[0]), int(self.shape[1])
        half = k2 // 2 + 1
        n = k1 * half
        eye = np.eye(n).reshape(n, k1, half)
        norm = float(k1 * k2) ** 0.5
        from_real = np.fft.irfft2(eye, s=(k1, k2)) * norm
        from_imag = np.fft.irfft2(1j * eye, s=(k1, k2)) * norm
        basis = np.concatenate([from_real, from_imag]).reshape(2 * n, k1 * k2)
        self._basis = tf.constant(basis.T, dtype=self.dtype)

    @tf.Module.with_name_scope
    def __call__(self, compute_dtype=None) -> tf.Tensor:
        k1, k2, cin, cout = (int(d) for d in self.shape)
        coefficients = tf.concat([
            tf.reshape(tf.transpose(v, (2, 3, 0, 1)), (-1, cin * cout))
            for v in (self.real, self.imag)], axis=0)
        kernel = tf.reshape(tf.matmul(self._basis, coefficients),
                            (k1, k2, cin, cout))
        if compute_dtype is not None:
            kernel = tf.cast(kernel, compute_dtype)
        return kernel


class SignalConv2D(tfc.SignalConv2D):
    """`tfc.SignalConv2D` whose RDFT kernels use `MatmulRDFTParameter`.

    `kernel_dtype="float16"` stores a spatial kernel (`kernel_parameter=
    "variable"`) as a float16 variable; `kernel` casts it to float32.
    """

    def __init__(self, *args, kernel_dtype: str = "float32", **kwargs):
        super().__init__(*args, **kwargs)
        if kernel_dtype not in KERNEL_DTYPES:
            raise ValueError(f"kernel_dtype must be one of {KERNEL_DTYPES},"
                             f" got {kernel_dtype!r}")
        if kernel_dtype != "float32" and self.kernel_parameter != "variable":
            raise ValueError(f"kernel_dtype {kernel_dtype!r} needs spatial kernels"
                             f" (kernel_parameter='variable'), got"
                             f" {self.kernel_parameter!r}")
        self.kernel_dtype = kernel_dtype

    def build(self, input_shape):
        input_channels = tf.TensorShape(input_shape)[-1]
        shape = self.kernel_support + (input_channels, self.filters)
        if self.kernel_parameter == "rdft":
            self.kernel_parameter = MatmulRDFTParameter(
                self.kernel_initializer(shape=shape, dtype=self.variable_dtype),
                name="kernel")
        elif self.kernel_parameter == "variable" and self.kernel_dtype != "float32":
            self.kernel_parameter = tf.Variable(tf.cast(
                self.kernel_initializer(shape=shape, dtype=self.variable_dtype),
                self.kernel_dtype), name="kernel")
        super().build(input_shape)


def _gdn(name: str, inverse: bool = False) -> tfc.GDN:
    """GDN as in the paper: y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2).

    tfc's default is the simplified form (alpha = epsilon = 1, an absolute
    value and no square root); the paper's is alpha = 2, epsilon = 1/2.
    Inverse GDN multiplies instead of dividing.
    """
    return tfc.GDN(name=name, inverse=inverse, alpha_parameter=2.0,
                   epsilon_parameter=0.5)


# (kernel size, stride) of the three stages, analysis order.
STAGES = ((9, 4), (5, 2), (5, 2))


class AnalysisTransform(tf.keras.Sequential):
    """g_a: image -> latents.

    Input float32 `[B, H, W, 3]` in `[0, 255]`; output float32
    `[B, H/16, W/16, num_filters]`. `kernel_parameter`: "rdft" for training,
    "variable" (spatial kernels) for inference; `kernel_dtype`: how spatial
    kernels are stored, "float32" or "float16".
    """

    def __init__(self, num_filters: int, name: str = "analysis_transform",
                 kernel_parameter: str = "rdft", kernel_dtype: str = "float32"):
        super().__init__(name=name)
        self.num_filters = num_filters
        # The model works on [0, 1]; scaling inside keeps the public range 0-255.
        self.add(tf.keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range"))
        for i, (kernel, stride) in enumerate(STAGES):
            last = i == len(STAGES) - 1
            self.add(SignalConv2D(
                num_filters, (kernel, kernel), corr=True, strides_down=stride,
                padding="same_zeros", use_bias=not last, name=f"conv_{i}",
                kernel_parameter=kernel_parameter, kernel_dtype=kernel_dtype,
                activation=None if last else _gdn(f"gdn_{i}")))


class SynthesisTransform(tf.keras.Sequential):
    """g_s: latents -> image.

    Input float32 `[B, h, w, num_filters]`; output float32
    `[B, 16h, 16w, 3]`, approximately in `[0, 255]` (the caller clips).
    `kernel_parameter` and `kernel_dtype` as for `AnalysisTransform`.
    """

    def __init__(self, num_filters: int, name: str = "synthesis_transform",
                 kernel_parameter: str = "rdft", kernel_dtype: str = "float32"):
        super().__init__(name=name)
        self.num_filters = num_filters
        for i, (kernel, stride) in enumerate(reversed(STAGES)):
            last = i == len(STAGES) - 1
            self.add(SignalConv2D(
                3 if last else num_filters, (kernel, kernel), corr=False,
                strides_up=stride, padding="same_zeros", use_bias=True,
                name=f"deconv_{i}", kernel_parameter=kernel_parameter,
                kernel_dtype=kernel_dtype,
                activation=None if last else _gdn(f"igdn_{i}", inverse=True)))
        self.add(tf.keras.layers.Rescaling(255.0, name="from_unit_range"))


def copy_weights(source: tf.keras.Sequential, target: tf.keras.Sequential) -> None:
    """Copies the weights of one built transform into another of the same shape.

    Either may hold its kernels in the Fourier domain (`RDFTParameter`) or in
    the spatial domain (`tf.Variable`, float32 or float16): each kernel is
    converted, so the target computes the same function to float rounding
    (float16 rounding, if the target stores its kernels so). GDN's
    reparameterised beta and gamma are copied as they are.

    Raises:
      ValueError: if the two transforms differ in their layers or shapes.
    """
    if [type(s) for s in source.layers] != [type(t) for t in target.layers]:
        raise ValueError(f"cannot copy {source.name} ({len(source.layers)} layers)"
                         f" into {target.name} ({len(target.layers)} layers)")
    for s, t in zip(source.layers, target.layers):
        if not isinstance(s, tfc.SignalConv2D):
            continue
        kernel = s.kernel
        if kernel.shape != t.kernel.shape:
            raise ValueError(f"cannot copy {s.name}'s kernel {kernel.shape} into"
                             f" {t.name}'s {t.kernel.shape}")
        if isinstance(t.kernel_parameter, tfc.RDFTParameter):
            fourier = tfc.RDFTParameter(kernel)
            t.kernel_parameter.real.assign(fourier.real)
            t.kernel_parameter.imag.assign(fourier.imag)
        else:
            t.kernel_parameter.assign(tf.cast(kernel, t.kernel_parameter.dtype))
        if s.use_bias:
            t.bias_parameter.assign(s.bias_parameter)
        if isinstance(s.activation, tfc.GDN):
            for name in ("beta_parameter", "gamma_parameter"):
                getattr(t.activation, name).variable.assign(
                    getattr(s.activation, name).variable)
