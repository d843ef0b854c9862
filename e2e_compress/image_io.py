"""Reading images from files into uint8 RGB arrays, and writing PNGs safely.

Every reader returns a numpy uint8 array of shape `[H, W, 3]` in `[0, 255]`.
What happens to each kind of input:

| input | result |
| --- | --- |
| 8-bit RGB | as is |
| greyscale (L), palette (P), CMYK, YCbCr | converted to RGB |
| LA, RGBA, P with transparency | refused, unless `drop_alpha=True` |
| 16-bit (I;16, I) | scaled to 8 bits, with a warning |
| EXIF-rotated JPEG | rotated as the orientation tag says |
| empty, truncated or non-image file | `ImageReadError` |
"""

import os
import tempfile
import warnings

import numpy as np
from PIL import Image, ImageOps

# Decompression-bomb guard: a larger image is refused, not decoded.
MAX_PIXELS = 200_000_000


class ImageReadError(ValueError):
    """The file is missing, empty, not an image, or not a supported image."""


def sample_path(name: str = "kodim23.png") -> str:
    """Path of a sample image bundled with the package (Kodak kodim23)."""
    return os.path.join(os.path.dirname(__file__), "samples", name)


def read_image(path: str, drop_alpha: bool = False) -> np.ndarray:
    """Reads an image file as uint8 `[H, W, 3]` RGB.

    Args:
      path: file path of any format Pillow reads (PNG, JPEG, WebP, ...).
      drop_alpha: if True, an alpha channel is discarded (colour kept as is);
        if False, an image with transparency raises `ImageReadError`, since the
        codec cannot store it.

    Raises:
      ImageReadError: missing, empty, unreadable, or with alpha and not
        `drop_alpha`.
    """
    if not os.path.exists(path):
        raise ImageReadError(f"no such file: {path}")
    if os.path.isdir(path):
        raise ImageReadError(f"expected an image file, got a directory: {path}")
    if os.path.getsize(path) == 0:
        raise ImageReadError(f"empty file: {path}")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageReadError(
                    f"{path}: {w}x{h} has more than {MAX_PIXELS} pixels")
            im = ImageOps.exif_transpose(im)
            return _to_rgb(im, path, drop_alpha)
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"cannot read {path} as an image: {e}") from None


def _to_rgb(im: Image.Image, path: str, drop_alpha: bool) -> np.ndarray:
    mode = im.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in im.info)
    if has_alpha and not drop_alpha:
        raise ImageReadError(
            f"{path} has an alpha channel (mode {mode}); the codec stores RGB"
            " only: pass --drop_alpha to discard the alpha channel")
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        warnings.warn(f"{path}: 16-bit image (mode {mode}) reduced to 8 bits")
        a = np.asarray(im, dtype=np.float64)
        a = np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(a[:, :, None], 3, axis=2)
    if mode == "F":
        raise ImageReadError(f"{path}: floating-point images are not supported")
    if mode in ("LA", "La"):
        im = im.convert("L")
    rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb)


def atomic_write_bytes(path: str, data: bytes, overwrite: bool = False) -> None:
    """Writes `data` to `path` through a temporary file and a rename.

    A reader never sees a half-written file, and nothing is written on error.

    Raises:
      FileExistsError: `path` exists and `overwrite` is False.
    """
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path} exists; pass --overwrite to replace it")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def encode_png(image: np.ndarray) -> bytes:
    """uint8 `[H, W, 3]` -> PNG bytes."""
    import io
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB").save(buf, "PNG")
    return buf.getvalue()


def write_png(path: str, image: np.ndarray, overwrite: bool = False) -> None:
    """Writes uint8 `[H, W, 3]` as a PNG, atomically."""
    atomic_write_bytes(path, encode_png(image), overwrite=overwrite)
