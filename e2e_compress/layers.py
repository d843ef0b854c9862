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

For training on CPUs with bfloat16 matrix units (Intel AMX, AVX512-BF16),
`conv_dtype="bfloat16"` computes each convolution as a stride-1
correlation of the polyphase components in bfloat16 (inputs and kernels
rounded to bfloat16, products accumulated in float32 by oneDNN, outputs cast
back to float32); bias, GDN and everything else stay float32. A strided
correlation becomes a correlation of `space_to_depth(x)`, an upsampling
convolution a correlation followed by `depth_to_space`, with the kernel taps
regathered (and zeros where a phase has fewer taps): the same function as
tfc's ops to float rounding in float32 (tested). tfc's own ops are not used
in bfloat16 because TF 2.14's bfloat16 convolutions with explicit padding
and its transposed convolutions fall back to slow kernels (measured here:
2.5 s against 0.07 s for one 5x5 192-channel layer).

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

from e2e_compress.configs import CONV_DTYPES

TOTAL_STRIDE = 16
# How spatial kernels may be stored; computation is float32 either way.
KERNEL_DTYPES = ("float32", "float16")


def polyphase_taps(kernel_size: int, stride: int, upsample: bool):
    """Which kernel tap each polyphase component uses, per block offset.

    For tfc's `padding="same_zeros"` with an odd `kernel_size` k and centre
    c = k // 2: a downsampling correlation computes
    `out[j] = sum_t x[s*j + t - c] w[t]`, which reads block `j + d` of
    `s` samples at phase r through tap `t = s*d + r + c`; an upsampling
    convolution computes `out[s*i + p] = sum_j x[j] w[s*i + p - s*j + c]`,
    which reads `x[i + d]` for output phase p through tap `t = p + c - s*d`.

    Returns:
      `(taps, first)`: int array `[blocks, stride]` of taps in `[0, k)`, -1
      where a phase has no tap at that offset; `first` is the block offset of
      row 0 (negative: blocks before the output's own).
    """
    centre = kernel_size // 2
    def tap(d, r):
        return r + centre - stride * d if upsample else stride * d + r + centre
    offsets = [d for d in range(-kernel_size, kernel_size + 1)
               if any(0 <= tap(d, r) < kernel_size for r in range(stride))]
    first, last = min(offsets), max(offsets)
    taps = np.array([[tap(d, r) if 0 <= tap(d, r) < kernel_size else -1
                      for r in range(stride)] for d in range(first, last + 1)])
    return taps, first


def _polyphase_gather_index(kernel_size: int, stride: int, upsample: bool):
    """Indices into a flattened `[k * k + 1, in, out]` kernel (the last row
    zero) that build the polyphase kernel `[blocks, stride, blocks, stride,
    in, out]`."""
    taps, first = polyphase_taps(kernel_size, stride, upsample)
    zero = kernel_size * kernel_size
    rows = taps[:, :, None, None]
    cols = taps[None, None, :, :]
    index = np.where((rows >= 0) & (cols >= 0), rows * kernel_size + cols, zero)
    return index, first, len(taps)


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
    `conv_dtype="bfloat16"` computes the convolution in bfloat16 through its
    polyphase components (module docstring); it needs an odd square kernel,
    `padding="same_zeros"`, channels last, either upsampling or
    downsampling, and (when downsampling) input sides that are multiples of
    the stride. Inputs and outputs stay float32.
    """

    def __init__(self, *args, kernel_dtype: str = "float32",
                 conv_dtype: str = "float32", **kwargs):
        super().__init__(*args, **kwargs)
        if kernel_dtype not in KERNEL_DTYPES:
            raise ValueError(f"kernel_dtype must be one of {KERNEL_DTYPES},"
                             f" got {kernel_dtype!r}")
        if kernel_dtype != "float32" and self.kernel_parameter != "variable":
            raise ValueError(f"kernel_dtype {kernel_dtype!r} needs spatial kernels"
                             f" (kernel_parameter='variable'), got"
                             f" {self.kernel_parameter!r}")
        if conv_dtype not in CONV_DTYPES:
            raise ValueError(f"conv_dtype must be one of {CONV_DTYPES},"
                             f" got {conv_dtype!r}")
        self.kernel_dtype = kernel_dtype
        self.conv_dtype = conv_dtype
        if conv_dtype != "float32":
            self._check_polyphase_supported()

    def _check_polyphase_supported(self):
        k1, k2 = self.kernel_support
        up, down = self.strides_up, self.strides_down
        problems = []
        if k1 != k2 or k1 % 2 == 0:
            problems.append(f"kernel_support {self.kernel_support} (need odd, square)")
        if self.padding != "same_zeros":
            problems.append(f"padding {self.padding!r} (need 'same_zeros')")
        if up[0] != up[1] or down[0] != down[1] or (up[0] > 1 and down[0] > 1):
            problems.append(f"strides_up {up}, strides_down {down} (need equal"
                            f" strides in both axes, up or down, not both)")
        if up[0] > 1 and not self.extra_pad_end:
            problems.append("extra_pad_end=False (need True: outputs of"
                            " stride x input size)")
        if self.channel_separable or self.data_format != "channels_last":
            problems.append("channel-separable or channels-first layout")
        if up[0] > 1 and self.corr or up[0] == 1 and not self.corr:
            problems.append(f"corr={self.corr} with strides_up {up} (need a"
                            f" correlation when downsampling, a convolution"
                            f" when upsampling)")
        if problems:
            raise ValueError(f"conv_dtype {self.conv_dtype!r} cannot compute"
                             f" {self.name}: " + "; ".join(problems))

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

    def call(self, inputs):
        if self.conv_dtype == "float32":
            return super().call(inputs)
        outputs = self._polyphase_convolution(inputs, self.conv_dtype)
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _polyphase_convolution(self, inputs, dtype):
        """The layer's convolution (no bias, no activation) computed in
        `dtype` through its polyphase components; float32 in and out."""
        k = self.kernel_support[0]
        upsample = self.strides_up[0] > 1
        stride = self.strides_up[0] if upsample else self.strides_down[0]
        index, first, blocks = _polyphase_gather_index(k, stride, upsample)
        kernel = self.kernel
        cin, cout = int(kernel.shape[2]), int(kernel.shape[3])
        flat = tf.reshape(kernel, (k * k, cin, cout))
        flat = tf.concat([flat, tf.zeros((1, cin, cout), flat.dtype)], axis=0)
        # [blocks, stride, blocks, stride, in, out]
        phases = tf.gather(flat, index)
        pad = [[0, 0], [-first, blocks - 1 + first],
               [-first, blocks - 1 + first], [0, 0]]
        if upsample:
            kernel = tf.reshape(tf.transpose(phases, (0, 2, 4, 1, 3, 5)),
                                (blocks, blocks, cin, stride * stride * cout))
            x = tf.pad(inputs, pad)
        else:
            shape = tf.shape(inputs)
            tf.debugging.assert_equal(
                shape[1:3] % stride, 0, message=f"{self.name}: polyphase"
                f" convolution needs input sides that are multiples of"
                f" {stride}")
            kernel = tf.reshape(tf.transpose(phases, (0, 2, 1, 3, 4, 5)),
                                (blocks, blocks, stride * stride * cin, cout))
            x = inputs if stride == 1 else tf.nn.space_to_depth(inputs, stride)
            x = tf.pad(x, pad)
        outputs = tf.nn.conv2d(tf.cast(x, dtype), tf.cast(kernel, dtype), 1,
                               "VALID")
        outputs = tf.cast(outputs, inputs.dtype)
        if upsample:
            outputs = tf.nn.depth_to_space(outputs, stride)
        return outputs


class PaperGDN(tfc.GDN):
    """`tfc.GDN` with the paper's fixed exponents, alpha = 2, epsilon = 1/2:
    `y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)` (inverse GDN
    multiplies instead of dividing).

    tfc's `call` picks its special cases by comparing the exponents, which
    are tensors: inside a `tf.function` those comparisons become nested
    `tf.cond`s whose general branch is an elementwise `pow`. In some
    processes (here: `e2e-compress train` under absl's `app.run`) that branch
    ran, 16 `pow`s over whole activations per step, doubling a 192-filter
    training step (0.36 -> 0.75 s, bfloat16). The exponents are constants,
    so this `call` decides in Python: square, 1x1 convolution with gamma,
    bias beta, square root. Same variables and values as `tfc.GDN`.
    """

    def __init__(self, name: str, inverse: bool = False):
        super().__init__(name=name, inverse=inverse, alpha_parameter=2.0,
                         epsilon_parameter=0.5)

    def call(self, inputs) -> tf.Tensor:
        if inputs.shape.rank != 4 or self.data_format != "channels_last":
            raise ValueError(f"{self.name} expects channels-last [B, H, W, C]"
                             f" inputs, got shape {inputs.shape}")
        gamma = tf.reshape(self.gamma, [1, 1] + self.gamma.shape.as_list())
        norm_pool = tf.nn.convolution(tf.math.square(inputs), gamma,
                                      padding="VALID")
        norm_pool = tf.math.sqrt(tf.nn.bias_add(norm_pool, self.beta))
        return inputs * norm_pool if self.inverse else inputs / norm_pool


def _gdn(name: str, inverse: bool = False) -> tfc.GDN:
    """GDN as in the paper (`PaperGDN`). tfc's default is the simplified
    form (alpha = epsilon = 1, an absolute value and no square root)."""
    return PaperGDN(name=name, inverse=inverse)


# (kernel size, stride) of the three stages, analysis order.
STAGES = ((9, 4), (5, 2), (5, 2))


class AnalysisTransform(tf.keras.Sequential):
    """g_a: image -> latents.

    Input float32 `[B, H, W, 3]` in `[0, 255]`; output float32
    `[B, H/16, W/16, num_filters]`. `kernel_parameter`: "rdft" for training,
    "variable" (spatial kernels) for inference; `kernel_dtype`: how spatial
    kernels are stored, "float32" or "float16"; `conv_dtype`: what the
    convolutions compute in, "float32" or "bfloat16" (a training speed-up on
    CPUs with bfloat16 units, see the module docstring).
    """

    def __init__(self, num_filters: int, name: str = "analysis_transform",
                 kernel_parameter: str = "rdft", kernel_dtype: str = "float32",
                 conv_dtype: str = "float32"):
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
                conv_dtype=conv_dtype,
                activation=None if last else _gdn(f"gdn_{i}")))


class SynthesisTransform(tf.keras.Sequential):
    """g_s: latents -> image.

    Input float32 `[B, h, w, num_filters]`; output float32
    `[B, 16h, 16w, 3]`, approximately in `[0, 255]` (the caller clips).
    `kernel_parameter`, `kernel_dtype` and `conv_dtype` as for
    `AnalysisTransform`.
    """

    def __init__(self, num_filters: int, name: str = "synthesis_transform",
                 kernel_parameter: str = "rdft", kernel_dtype: str = "float32",
                 conv_dtype: str = "float32"):
        super().__init__(name=name)
        self.num_filters = num_filters
        for i, (kernel, stride) in enumerate(reversed(STAGES)):
            last = i == len(STAGES) - 1
            self.add(SignalConv2D(
                3 if last else num_filters, (kernel, kernel), corr=False,
                strides_up=stride, padding="same_zeros", use_bias=True,
                name=f"deconv_{i}", kernel_parameter=kernel_parameter,
                kernel_dtype=kernel_dtype, conv_dtype=conv_dtype,
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
