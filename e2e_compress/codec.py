"""Compressing images to `.e2ec` bytes and back with an exported model.

    model = codec.load_model("bls2017-mse-q4")      # or a SavedModel path
    data = codec.compress(model, image)             # uint8 [H, W, 3] -> bytes
    image = codec.decompress(data)                  # finds the model by id
"""

import dataclasses
import functools

import numpy as np

from e2e_compress import container, export, image_io, tiling, zoo


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A loaded SavedModel with its metadata."""

    path: str
    info: dict
    module: object

    @property
    def model_id(self) -> str:
        return self.info["model_id"]


@functools.lru_cache(maxsize=8)
def _load(path: str) -> LoadedModel:
    import tensorflow as tf
    import tensorflow_compression  # noqa: F401 - registers the range coding ops

    info = export.read_model_info(path)
    return LoadedModel(path=path, info=info, module=tf.saved_model.load(path))


def load_model(name_or_path: str | None = None) -> LoadedModel:
    """Loads a shipped model by name, a SavedModel by path, or the default."""
    return _load(zoo.resolve(name_or_path))


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected a uint8 array of shape [H, W, 3], got {image.dtype}"
            f" {list(image.shape)}")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"expected H, W >= 1, got {list(image.shape)}")
    return image


def compress(model: LoadedModel, image) -> bytes:
    """Compresses an image into `.e2ec` container bytes.

    Args:
      model: from `load_model`.
      image: uint8 `[H, W, 3]` in [0, 255], any H, W >= 1.

    Images over `tiling.TILE_SIZE` px a side go through the transforms tile by
    tile (same file format, no seams, see `tiling.py`).

    Returns:
      The complete file contents (header, payload, checksum).
    """
    image = _check_image(image)
    height, width = image.shape[:2]
    if tiling.needs_tiling(height, width):
        latents = tiling.analyse(model.module, image)
        strings = model.module.compress_latents(latents)
    else:
        strings, _, _ = model.module.compress(image)
    return container.pack(container.Packed(
        model_id=model.model_id, height=height, width=width,
        payload=strings.numpy()[0]))


def decompress(data: bytes, model: str | LoadedModel | None = None,
               max_pixels: int | None = None) -> np.ndarray:
    """Decodes `.e2ec` bytes to uint8 `[H, W, 3]`.

    Args:
      data: the file contents.
      model: the model (name, path or loaded) to use; by default the shipped
        model whose id the file names. A model whose id differs is refused.
      max_pixels: refuse files whose header states a larger image (default
        `image_io.MAX_PIXELS`). Decoding work grows with the stated size, and
        an intact file can state any size: a service decoding untrusted
        files should set its own bound, as with Pillow's decompression-bomb
        limit.

    Raises:
      container.FormatError: the bytes are not an intact `.e2ec` file.
      zoo.ModelNotFoundError: no model with the file's id is available.
    """
    import tensorflow as tf

    packed = container.unpack(data)
    limit = image_io.MAX_PIXELS if max_pixels is None else max_pixels
    if packed.height * packed.width > limit:
        raise container.FormatError(
            f"image of {packed.height}x{packed.width} exceeds the decoder's limit"
            f" of {limit} pixels")
    if isinstance(model, LoadedModel):
        if model.model_id != packed.model_id:
            raise zoo.ModelNotFoundError(
                f"the file was made by model {packed.model_id}, not by"
                f" {model.model_id}")
        loaded = model
    else:
        loaded = _load(zoo.find_by_id(packed.model_id, extra=model))
    image_shape = np.array([packed.height, packed.width], np.int32)
    latent_shape = (image_shape + 15) // 16
    num_symbols = int(np.prod(latent_shape)) * int(loaded.info["num_filters"])
    strings = tf.constant([packed.payload])
    try:
        # Range decoding first, under a deadline (see DecodeTimeout).
        latents = _decode_latents(loaded.module, strings, latent_shape, num_symbols)
        if latents is None:  # exported before 0.2: one graph does it all
            return loaded.module.decompress(
                strings, image_shape, latent_shape).numpy()
        # A small image is a single tile: the same synthesis, decoded once.
        return tiling.synthesise(loaded.module, latents.numpy(),
                                 packed.height, packed.width)
    except tf.errors.OpError as e:
        # The checksum passed, so this is a payload the encoder did not write.
        raise container.FormatError(
            f"payload does not decode: {e.message.splitlines()[0]}") from None


class DecodeTimeout(container.FormatError):
    """The range decoder did not finish: a damaged or crafted payload.

    tfc 2.14.1's decoder reads zeros past the end of its input and decodes a
    value outside the model's table (an "overflow") with an Elias gamma code
    whose unary prefix has no bound, so a damaged payload can make it spin
    forever (`e2e-compress fuzz` found 9 in 20,000 resealed mutations). The
    checksum stops accidental damage; a crafted file can carry a valid one.
    The decoding thread cannot be stopped: the command line exits the
    process; a long-running program decoding untrusted files should decode
    in a worker process it can replace.
    """

    stuck_thread = True  # tells the command line to end the process hard


def _decode_latents(module, strings, latent_shape, num_symbols: int):
    """Range-decodes in a daemon thread with a deadline of 5 s plus 2 s per
    million latents (a valid Kodak image takes ~0.02 s)."""
    import threading

    if not hasattr(module, "decompress_latents"):  # exported before 0.2
        return None
    deadline = 5.0 + 2e-6 * num_symbols
    result = {}

    def run():
        try:
            result["latents"] = module.decompress_latents(strings, latent_shape)
        except Exception as e:  # noqa: BLE001 - re-raised in the caller
            result["error"] = e

    thread = threading.Thread(target=run, daemon=True, name="range-decoder")
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        raise DecodeTimeout(
            f"payload does not decode: the range decoder did not finish in"
            f" {deadline:.0f} s (a damaged or crafted file)")
    if "error" in result:
        raise result["error"]
    return result["latents"]


def estimate_bits(model: LoadedModel, image) -> float:
    """The entropy model's estimate of the payload size, in bits."""
    return float(model.module.estimate_bits(_check_image(image)))
