"""tf.data pipelines of training and validation patches.

Files are checked once with Pillow (so an unreadable one is named in a warning
and skipped), decoded in parallel by TensorFlow, cached in memory, and cut into
random square crops with random horizontal flips. Patches are float32
`[B, P, P, 3]` in `[0, 255]`.
"""

import glob as globlib

import tensorflow as tf
from absl import logging
from PIL import Image

# Formats tf.io.decode_image understands.
_TF_FORMATS = ("PNG", "JPEG", "GIF", "BMP")


class NoImagesError(ValueError):
    """A glob matched no usable image."""


def expand_braces(pattern: str) -> list[str]:
    """Shell-style brace expansion: `a_{x,y}.png` -> `[a_x.png, a_y.png]`.

    Python's glob has no braces; the training-set README gives its licence
    subsets as brace globs. Nested braces are expanded from the left.
    """
    start = pattern.find("{")
    end = pattern.find("}", start)
    if start < 0 or end < 0:
        return [pattern]
    head, body, tail = pattern[:start], pattern[start + 1:end], pattern[end + 1:]
    out = []
    for option in body.split(","):
        out.extend(expand_braces(head + option + tail))
    return out


def list_images(pattern: str, min_size: int) -> tuple[list[str], dict]:
    """Files matching `pattern` that can be decoded and hold a min_size crop.

    Args:
      pattern: a glob (with `**` for recursion and `{a,b}` alternatives).
      min_size: smallest acceptable height and width, in pixels.

    Returns:
      `(paths, counts)`: the usable paths, sorted; counts of `matched`,
      `unreadable` and `too_small` files.

    Raises:
      NoImagesError: nothing matched, or nothing matched was usable.
    """
    matched = sorted({p for part in expand_braces(pattern)
                      for p in globlib.glob(part, recursive=True)})
    if not matched:
        raise NoImagesError(f"no files match {pattern!r}")
    paths, unreadable, too_small = [], 0, 0
    for path in matched:
        try:
            with Image.open(path) as im:
                fmt, (w, h) = im.format, im.size
                im.verify()
            if fmt not in _TF_FORMATS:
                raise ValueError(f"format {fmt} (need one of {_TF_FORMATS})")
        except Exception as e:  # noqa: BLE001 - any failure means skip the file
            logging.warning("skipping unreadable training file %s: %s", path, e)
            unreadable += 1
            continue
        if min(w, h) < min_size:
            too_small += 1
            continue
        paths.append(path)
    counts = dict(matched=len(matched), unreadable=unreadable,
                  too_small=too_small, used=len(paths))
    if not paths:
        raise NoImagesError(
            f"none of the {len(matched)} files matching {pattern!r} is a readable"
            f" image of at least {min_size}x{min_size} px ({counts})")
    if too_small:
        logging.info("skipped %d images smaller than %d px", too_small, min_size)
    return paths, counts


def _decode(path):
    image = tf.io.decode_image(
        tf.io.read_file(path), channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape((None, None, 3))
    return image


def make_patch_dataset(paths: list[str], patch_size: int, batch_size: int,
                       seed: int = 0, shuffle_buffer: int = 64) -> tf.data.Dataset:
    """Endless dataset of random crops, float32 `[batch, P, P, 3]` in [0, 255].

    Decoded images are cached in memory (about 0.5 GB for 458 photos of
    ~512x768), so each file is decoded once per run.
    """
    autotune = tf.data.AUTOTUNE
    ds = tf.data.Dataset.from_tensor_slices(paths)
    ds = ds.map(_decode, num_parallel_calls=autotune)
    ds = ds.ignore_errors(log_warning=True)
    ds = ds.cache()
    ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()

    def crop(image):
        image = tf.image.random_crop(image, (patch_size, patch_size, 3))
        image = tf.image.random_flip_left_right(image)
        return tf.cast(image, tf.float32)

    ds = ds.map(crop, num_parallel_calls=autotune)
    ds = ds.shuffle(shuffle_buffer, seed=seed)
    return ds.batch(batch_size, drop_remainder=True).prefetch(autotune)


def centre_crop(path: str, size: int) -> tf.Tensor:
    """float32 `[1, size, size, 3]` centre crop (zero-padded if smaller)."""
    image = tf.image.resize_with_crop_or_pad(_decode(path), size, size)
    return tf.cast(image, tf.float32)[None]


def make_validation_dataset(paths: list[str], patch_size: int,
                            batch_size: int) -> tf.data.Dataset:
    """Centre crops, float32 `[batch, P, P, 3]` in [0, 255], cached, finite."""
    ds = tf.data.Dataset.from_tensor_slices(paths).map(_decode)
    ds = ds.map(lambda im: tf.cast(
        tf.image.resize_with_crop_or_pad(im, patch_size, patch_size), tf.float32))
    return ds.batch(batch_size).cache()
