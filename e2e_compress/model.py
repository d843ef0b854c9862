"""The Keras model of Balle, Laparra & Simoncelli (2017).

J. Balle, V. Laparra, E. P. Simoncelli, "End-to-end Optimized Image
Compression", Int. Conf. on Learning Representations (ICLR), 2017.
https://arxiv.org/abs/1611.01704

Notation used in local variables: `x` image, float32 `[B, H, W, 3]` in
`[0, 255]`; `y` latents (analysis transform output); `y_tilde` latents with
additive uniform noise (training) or rounded (evaluation); `x_hat`
reconstruction.

The loss is `R + lmbda * D`, with R in bits per pixel (bits summed over the
batch, divided by B*H*W) and, for MSE models, D the mean squared error on the
0-255 scale. `lmbda` therefore has units of bpp per squared 8-bit level: the
reference values 0.0018 ... 0.18 span about 0.1 ... 2 bpp on Kodak.
For MS-SSIM models, D is `1 - MS-SSIM` and lmbda is correspondingly larger
(see `configs.ModelConfig`).
"""

import tensorflow as tf

from e2e_compress import layers, rate
from e2e_compress.configs import ModelConfig


class BLS2017Model(tf.keras.Model):
    """Analysis transform, factorized entropy bottleneck, synthesis transform.

    `conv_dtype` is what the transforms' convolutions compute in: "float32",
    or "bfloat16" to train faster on CPUs with bfloat16 units (see
    `layers`). It is not part of the model: the variables are the same
    either way, and exported models compute in float32.
    """

    def __init__(self, config: ModelConfig, conv_dtype: str = "float32", **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.lmbda = config.lmbda
        self.analysis_transform = layers.AnalysisTransform(
            config.num_filters, conv_dtype=conv_dtype)
        self.synthesis_transform = layers.SynthesisTransform(
            config.num_filters, conv_dtype=conv_dtype)
        self.prior = rate.make_prior(config.num_filters)
        # Create the variables with one small eager call; Keras' symbolic
        # `build` cannot lift tfc's kernel initial values out of its graph.
        # MS-SSIM's five scales need 161 px or more (176: a multiple of 16).
        side = 176 if config.distortion == "ms-ssim" else 16
        self(tf.zeros((1, side, side, 3)), training=False)
        # Optional separate optimizer for the prior's parameters (see train.py).
        self.prior_optimizer = None
        self._metric_names = ("loss", "bpp", "mse", "psnr", "ms_ssim")
        self._trackers = {n: tf.keras.metrics.Mean(name=n)
                          for n in self._metric_names}

    def call(self, x, training):
        """Rate and distortion of a batch.

        Args:
          x: float32 (or uint8) `[B, H, W, 3]` in `[0, 255]`, H and W
            multiples of 16.
          training: True adds uniform noise to the latents (with
            `quantization="mixed"`, only for the rate: the synthesis gets
            them rounded), False rounds them.

        Returns:
          `(loss, bpp, mse, ms_ssim)` scalars; mse on the 0-255 scale.
        """
        offset = None
        if not training or self.config.quantization == "mixed":
            # Rounding needs the grid offsets; tfc's own search for them
            # costs ~30 % of a training step (see rate.prior_median).
            offset = rate.quantization_offset(self.prior)
        entropy_model = rate.make_entropy_model(
            self.prior, compression=False, quantization_offset=offset)
        x = tf.cast(x, self.compute_dtype)
        y = self.analysis_transform(x)
        y_tilde, bits = entropy_model(y, training=training)
        if training and self.config.quantization == "mixed":
            # Rounded latents for the synthesis, identity gradient (tfc's
            # straight-through `quantize`); the rate keeps the noisy ones.
            y_tilde = entropy_model.quantize(y)
        x_hat = self.synthesis_transform(y_tilde)
        num_pixels = tf.reduce_prod(tf.shape(x)[:-1])
        bpp = rate.bits_per_pixel(bits, num_pixels)
        mse = tf.reduce_mean(tf.math.squared_difference(x, x_hat))
        if self.config.distortion == "ms-ssim":
            ms_ssim = tf.reduce_mean(tf.image.ssim_multiscale(
                tf.clip_by_value(x_hat, 0.0, 255.0), x, max_val=255.0))
            loss = bpp + self.lmbda * (1.0 - ms_ssim)
        else:
            ms_ssim = tf.constant(float("nan"))
            loss = bpp + self.lmbda * mse
        return loss, bpp, mse, ms_ssim

    def _update_metrics(self, loss, bpp, mse, ms_ssim):
        self._trackers["loss"].update_state(loss)
        self._trackers["bpp"].update_state(bpp)
        self._trackers["mse"].update_state(mse)
        self._trackers["psnr"].update_state(
            10.0 * tf.math.log(255.0 ** 2 / mse) / tf.math.log(10.0))
        if self.config.distortion == "ms-ssim":
            self._trackers["ms_ssim"].update_state(ms_ssim)
        names = self._metric_names
        if self.config.distortion != "ms-ssim":
            names = names[:-1]
        return {n: self._trackers[n].result() for n in names}

    def train_step(self, x):
        # Under a tf.distribute strategy the gradients of the replicas are
        # summed, so each replica's loss is divided by their number.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss, bpp, mse, ms_ssim = self(x, training=True)
            scaled_loss = loss / replicas
        if self.prior_optimizer is None:
            variables = self.trainable_variables
            gradients = tape.gradient(scaled_loss, variables)
            self.optimizer.apply_gradients(zip(gradients, variables))
        else:
            prior_vars = self.prior.trainable_variables
            prior_ids = {id(v) for v in prior_vars}
            transform_vars = [v for v in self.trainable_variables
                              if id(v) not in prior_ids]
            g_transform, g_prior = tape.gradient(
                scaled_loss, (transform_vars, prior_vars))
            self.optimizer.apply_gradients(zip(g_transform, transform_vars))
            self.prior_optimizer.apply_gradients(zip(g_prior, prior_vars))
        return self._update_metrics(loss, bpp, mse, ms_ssim)

    def test_step(self, x):
        loss, bpp, mse, ms_ssim = self(x, training=False)
        return self._update_metrics(loss, bpp, mse, ms_ssim)

    @property
    def metrics(self):
        return list(self._trackers.values())
