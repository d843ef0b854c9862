"""Export of a trained model as a slim SavedModel.

The SavedModel holds only what inference needs: the two transforms with their
kernels in the spatial domain (training's Fourier parameterisation holds a
sixth more numbers, see `layers.py`), stored as float32 or, to halve the
model at a measured cost of ~0.001 dB, as float16 (`kernel_dtype`); the
prior (so that a model can warm-start another); the entropy model with its
range coding tables; a `model_info.json` asset; and two `tf.function`s:

- `compress(image)`: uint8 `[H, W, 3]`, H, W >= 1 ->
  `(strings, image_shape, latent_shape)`: string `[1]` (the range-coded
  latents), int32 `[2]` (H, W), int32 `[2]` (ceil(H/16), ceil(W/16)).
- `decompress(strings, image_shape, latent_shape)` -> uint8 `[H, W, 3]`.

Both are also exported as the named signatures `compress` (input `image`;
outputs `strings`, `image_shape`, `latent_shape`) and `decompress` (inputs
`strings`, `image_shape`, `latent_shape`; output `image`). Loading needs `import tensorflow_compression` first, which
registers the range coding ops.

Four lower-level functions let a caller run the transforms over tiles of a
large image and code the latents in one piece (see `tiling.py`):

- `analyse_tile(x)`: float32 `[1, H, W, 3]` in [0, 255], H and W multiples of
  16 -> latents float32 `[1, H/16, W/16, C]` (not rounded);
- `synthesise_tile(y)`: float32 `[1, h, w, C]` -> float32 `[1, 16h, 16w, 3]`,
  not rounded or clipped;
- `compress_latents(y)`: float32 `[1, h, w, C]` -> string `[1]`;
- `decompress_latents(strings, latent_shape)`: -> float32 `[1, h, w, C]`,
  integer-valued.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from keras.src.saving.legacy.saved_model import utils as keras_saved_model_utils

import e2e_compress
from e2e_compress import layers, rate, widen
from e2e_compress.configs import ModelConfig
from e2e_compress.model import BLS2017Model

MODEL_INFO = "model_info.json"
# `kernel_parameter` of the exported transforms; models exported before this
# existed hold tfc's Fourier-domain "rdft" kernels.
SPATIAL = "variable"


class CompressionModule(tf.Module):
    """The inference half of a trained `BLS2017Model`."""

    def __init__(self, analysis_transform, synthesis_transform, prior,
                 range_coder_precision: int = rate.RANGE_CODER_PRECISION):
        super().__init__(name="bls2017")
        self.analysis_transform = analysis_transform
        self.synthesis_transform = synthesis_transform
        self.prior = prior
        self.entropy_model = rate.make_entropy_model(
            prior, compression=True, range_coder_precision=range_coder_precision)

    @tf.function(input_signature=[
        tf.TensorSpec(shape=(None, None, 3), dtype=tf.uint8)])
    def compress(self, image):
        """uint8 `[H, W, 3]` -> (string `[1]`, int32 `[2]`, int32 `[2]`)."""
        y, image_shape, latent_shape = self._analyse(image)
        strings = self.entropy_model.compress(y)
        return strings, image_shape, latent_shape

    def _analyse(self, image):
        """uint8 `[H, W, 3]` -> latents `[1, h, w, C]`, (H, W), (h, w)."""
        image_shape = tf.shape(image)[:2]
        stride = layers.TOTAL_STRIDE
        latent_shape = (image_shape + stride - 1) // stride
        padded = latent_shape * stride
        # Edge replication: works for any size (even 1x1, where reflection
        # cannot) and costs fewer bits than zeros at the border.
        rows = tf.minimum(tf.range(padded[0]), image_shape[0] - 1)
        cols = tf.minimum(tf.range(padded[1]), image_shape[1] - 1)
        x = tf.gather(tf.gather(image, rows, axis=0), cols, axis=1)
        y = self.analysis_transform(tf.cast(x, tf.float32)[None])
        return y, image_shape, latent_shape

    @tf.function(input_signature=[
        tf.TensorSpec(shape=(1,), dtype=tf.string),
        tf.TensorSpec(shape=(2,), dtype=tf.int32),
        tf.TensorSpec(shape=(2,), dtype=tf.int32)])
    def decompress(self, strings, image_shape, latent_shape):
        """The outputs of `compress` -> uint8 `[H, W, 3]`."""
        y_hat = self.entropy_model.decompress(strings, latent_shape)
        x_hat = self.synthesis_transform(y_hat)[0, :image_shape[0], :image_shape[1]]
        return tf.saturate_cast(tf.round(x_hat), tf.uint8)

    @tf.function(input_signature=[
        tf.TensorSpec(shape=(1, None, None, 3), dtype=tf.float32)])
    def analyse_tile(self, x):
        """float32 `[1, H, W, 3]` (0-255, H, W multiples of 16) -> latents."""
        return self.analysis_transform(x)

    @tf.function(input_signature=[
        tf.TensorSpec(shape=(1, None, None, None), dtype=tf.float32)])
    def synthesise_tile(self, y):
        """Latents float32 `[1, h, w, C]` -> float32 `[1, 16h, 16w, 3]`."""
        return self.synthesis_transform(y)

    @tf.function(input_signature=[
        tf.TensorSpec(shape=(1, None, None, None), dtype=tf.float32)])
    def compress_latents(self, y):
        """Latents float32 `[1, h, w, C]` -> range-coded string `[1]`."""
        return self.entropy_model.compress(y)

    @tf.function(input_signature=[
        tf.TensorSpec(shape=(1,), dtype=tf.string),
        tf.TensorSpec(shape=(2,), dtype=tf.int32)])
    def decompress_latents(self, strings, latent_shape):
        """string `[1]`, int32 `(h, w)` -> rounded latents `[1, h, w, C]`."""
        return self.entropy_model.decompress(strings, latent_shape)

    @tf.function(input_signature=[
        tf.TensorSpec(shape=(None, None, 3), dtype=tf.uint8)])
    def estimate_bits(self, image):
        """The entropy model's estimate of the bits `compress` will spend.

        Returns a float32 scalar: the information content of the rounded
        latents under the prior, in bits.
        """
        y, _, _ = self._analyse(image)
        _, bits = self.entropy_model(y, training=False)
        return tf.reduce_sum(bits)


def _spatial_transforms(num_filters: int, kernel_dtype: str = "float32"):
    """Built analysis and synthesis transforms with spatial-domain kernels."""
    analysis = layers.AnalysisTransform(
        num_filters, kernel_parameter=SPATIAL, kernel_dtype=kernel_dtype)
    synthesis = layers.SynthesisTransform(
        num_filters, kernel_parameter=SPATIAL, kernel_dtype=kernel_dtype)
    analysis(tf.zeros((1, layers.TOTAL_STRIDE, layers.TOTAL_STRIDE, 3)))
    synthesis(tf.zeros((1, 1, 1, num_filters)))
    return analysis, synthesis


def inference_module(model, kernel_dtype: str = "float32",
                     range_coder_precision: int = rate.RANGE_CODER_PRECISION
                     ) -> CompressionModule:
    """The `CompressionModule` that `export_model` saves for a `BLS2017Model`.

    Its transforms are copies of the model's with spatial-domain kernels
    stored as `kernel_dtype` ("float32": the same outputs to float rounding;
    "float16": to float16 rounding of the kernels); the prior is the model's
    own; its range coder works at `range_coder_precision` bits (see
    `rate.RANGE_CODER_PRECISION`).
    """
    analysis, synthesis = _spatial_transforms(model.config.num_filters, kernel_dtype)
    layers.copy_weights(model.analysis_transform, analysis)
    layers.copy_weights(model.synthesis_transform, synthesis)
    return CompressionModule(analysis, synthesis, model.prior,
                             range_coder_precision)


def fingerprint(module: tf.Module) -> str:
    """A 16-hex-digit id of a model's weights and range coder (sha256).

    Variables are taken in the module's structural order and hashed with
    their shapes, not their names: TF variable names depend on the context
    the layers were built in, so a model restored elsewhere would get another
    id. The range coder's precision is hashed too, except the legacy 12 bits
    (so ids of models exported before it was recorded stay valid): the same
    weights at another precision write other files. Two models with the same
    id decode each other's files identically.
    """
    h = hashlib.sha256()
    for v in module.trainable_variables:
        value = np.ascontiguousarray(v.numpy())
        h.update(str(value.shape).encode())
        h.update(value.tobytes())
    precision = module.entropy_model.range_coder_precision
    if precision != rate.LEGACY_RANGE_CODER_PRECISION:
        h.update(f"range_coder_precision={precision}".encode())
    return h.hexdigest()[:16]


def export_model(model, path: str, info: dict, overwrite: bool = False,
                 kernel_dtype: str = "float32",
                 range_coder_precision: int = rate.RANGE_CODER_PRECISION) -> dict:
    """Writes a trained `BLS2017Model` as a SavedModel directory at `path`.

    The directory is written beside `path` and renamed into place, so a
    failed export leaves no half-written model.

    Args:
      model: a `BLS2017Model`.
      path: the SavedModel directory to create.
      info: metadata to store (lmbda, steps, training data...). The model id,
        num_filters and package version are added.
      overwrite: replace an existing directory.
      kernel_dtype: "float32" or "float16": how the convolution kernels are
        stored (they are used as float32 either way). float16 halves the
        model; it is recorded in the metadata and changes the model id.
      range_coder_precision: bits of the range coder's probabilities, 12 to
        16; recorded in the metadata, part of the model id.

    Returns:
      The complete metadata dict, as written to `assets/model_info.json`.
    """
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite to replace it")
    module = inference_module(model, kernel_dtype, range_coder_precision)
    info = dict(info)
    info.update(
        model_id=fingerprint(module),
        kernel_parameter=SPATIAL,
        kernel_dtype=kernel_dtype,
        range_coder_precision=range_coder_precision,
        num_filters=model.config.num_filters,
        lmbda=model.config.lmbda,
        distortion=model.config.distortion,
        package_version=e2e_compress.__version__,
        format="bls2017",
    )
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        info_path = os.path.join(tmp, MODEL_INFO)
        with open(info_path, "w") as f:
            json.dump(info, f, indent=2, sort_keys=True)
        module.model_info = tf.saved_model.Asset(info_path)
        target = os.path.join(tmp, "model")
        # Keras would also trace every layer's `call` into the SavedModel. The
        # exported tf.functions are all a user needs, the traces would double
        # the size, and tfc.GDN with constant exponents cannot be traced
        # without autograph. `save_traces=False` is what `Model.save` offers;
        # for a tf.Module it is set through Keras' own option scope.
        with keras_saved_model_utils.keras_option_scope(save_traces=False):
            tf.saved_model.save(module, target, signatures=_signatures(module))
        os.remove(info_path)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def convert_model(source: str, path: str, kernel_dtype: str,
                  overwrite: bool = False,
                  range_coder_precision: int = rate.RANGE_CODER_PRECISION) -> dict:
    """Re-exports the exported model at `source` with other kernel storage
    or range coder precision.

    For example a float32 model to float16 (half the size, ~0.001 dB; see
    `layers.KERNEL_DTYPES`), a model exported with Fourier kernels to
    spatial ones, or a model coding at tfc's default 12-bit precision to 16
    bits (files ~0.5 % smaller at the lowest rates; see
    `rate.RANGE_CODER_PRECISION`). The weights are the source's, rounded to
    `kernel_dtype`; the metadata (λ, steps, training data, lineage) is
    carried over, with `converted_from` naming the source's model id, kernel
    dtype and precision. The new model has its own id; files the source
    wrote decode only with the source.

    Args:
      source: an exported e2e-compress SavedModel directory.
      path: the directory to create; must differ from `source`.
      kernel_dtype: "float32" or "float16".
      overwrite: replace an existing `path`.
      range_coder_precision: 12 to 16 bits.

    Returns:
      The new model's metadata (see `export_model`).

    Raises:
      FileNotFoundError: `source` is not an exported model.
      ValueError: `path` is `source`, or `kernel_dtype` is not supported.
    """
    if os.path.abspath(path) == os.path.abspath(source):
        raise ValueError(f"convert_model writes a new model: the target {path}"
                         f" is the source")
    if kernel_dtype not in layers.KERNEL_DTYPES:
        raise ValueError(f"kernel_dtype must be one of {layers.KERNEL_DTYPES},"
                         f" got {kernel_dtype!r}")
    info = read_model_info(source)
    model = BLS2017Model(ModelConfig(
        num_filters=info["num_filters"], lmbda=info["lmbda"],
        distortion=info.get("distortion", "mse")))
    restore_weights(model, source)
    carried = {k: v for k, v in info.items() if k not in (
        "model_id", "kernel_parameter", "kernel_dtype", "package_version",
        "range_coder_precision", "converted_from")}
    carried["converted_from"] = dict(
        model_id=info.get("model_id"),
        kernel_dtype=info.get("kernel_dtype", "float32"),
        range_coder_precision=info.get("range_coder_precision",
                                       rate.LEGACY_RANGE_CODER_PRECISION),
        converted_from=info.get("converted_from"))
    return export_model(model, path, carried, overwrite=overwrite,
                        kernel_dtype=kernel_dtype,
                        range_coder_precision=range_coder_precision)


def _signatures(module: CompressionModule) -> dict:
    """Named signatures with named outputs, for serving and other languages."""

    @tf.function(input_signature=[
        tf.TensorSpec(shape=(None, None, 3), dtype=tf.uint8, name="image")])
    def compress(image):
        strings, image_shape, latent_shape = module.compress(image)
        return dict(strings=strings, image_shape=image_shape,
                    latent_shape=latent_shape)

    @tf.function(input_signature=[
        tf.TensorSpec(shape=(1,), dtype=tf.string, name="strings"),
        tf.TensorSpec(shape=(2,), dtype=tf.int32, name="image_shape"),
        tf.TensorSpec(shape=(2,), dtype=tf.int32, name="latent_shape")])
    def decompress(strings, image_shape, latent_shape):
        return dict(image=module.decompress(strings, image_shape, latent_shape))

    return {"compress": compress, "decompress": decompress}


def read_model_info(path: str) -> dict:
    """Metadata of an exported model directory, without loading TF graphs."""
    info_path = os.path.join(path, "assets", MODEL_INFO)
    if not os.path.isfile(info_path):
        raise FileNotFoundError(
            f"{path} is not an e2e-compress SavedModel (no assets/{MODEL_INFO})")
    with open(info_path) as f:
        return json.load(f)


def restore_weights(model, path: str) -> None:
    """Loads the weights of an exported model (or training dir) into `model`.

    Used to warm-start training from a neighbouring lmbda. `path` is an
    exported SavedModel directory or a training directory with checkpoints.
    An exported model with fewer filters is widened to `model`'s width,
    computing the same function (see `widen.py`).
    """
    ckpt = tf.train.Checkpoint(
        analysis_transform=model.analysis_transform,
        synthesis_transform=model.synthesis_transform,
        prior=model.prior)
    if os.path.isdir(os.path.join(path, "variables")):
        info = read_model_info(path)
        if info["num_filters"] < model.config.num_filters:
            _widen_from(model, path, info["num_filters"])
            return
        if info["num_filters"] != model.config.num_filters:
            raise ValueError(
                f"cannot warm-start a {model.config.num_filters}-filter model from"
                f" {path}, which has {info['num_filters']} filters (a model can"
                f" start from a narrower one, not from a wider one)")
        source = os.path.join(path, "variables", "variables")
        if info.get("kernel_parameter", "rdft") != SPATIAL:
            ckpt.read(source).assert_existing_objects_matched().expect_partial()
            return
        analysis, synthesis = _spatial_transforms(
            model.config.num_filters, info.get("kernel_dtype", "float32"))
        tf.train.Checkpoint(
            analysis_transform=analysis, synthesis_transform=synthesis,
            prior=model.prior).read(source).assert_existing_objects_matched(
            ).expect_partial()
        layers.copy_weights(analysis, model.analysis_transform)
        layers.copy_weights(synthesis, model.synthesis_transform)
        return
    latest = tf.train.latest_checkpoint(os.path.join(path, "checkpoints"))
    if latest is None:
        raise FileNotFoundError(
            f"{path} is neither an exported model nor a training directory")
    tf.train.Checkpoint(model=ckpt).read(latest).expect_partial()


def _widen_from(model, path: str, num_filters: int) -> None:
    """Restores the narrower exported model at `path`, then widens it."""
    narrow = BLS2017Model(dataclasses.replace(model.config, num_filters=num_filters))
    restore_weights(narrow, path)
    widen.widen(model, narrow)
