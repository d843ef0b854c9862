"""Classical codecs through Pillow, in memory.

Each encoder takes uint8 `[H, W, 3]` and a setting and returns the complete
file bytes; `decode` reads them back to uint8 `[H, W, 3]`.

Settings (the strongest reasonable ones for each codec):
- JPEG: libjpeg-turbo, 4:2:0 chroma subsampling, optimised Huffman tables,
  baseline; the setting is the quality 1-95.
"""

import io

import numpy as np
from PIL import Image


def encode_jpeg(image, quality: int) -> bytes:
    """JPEG file bytes at `quality` (1-95), 4:2:0, optimised Huffman."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8), "RGB").save(
        buf, "JPEG", quality=int(quality), subsampling="4:2:0", optimize=True)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Any Pillow-readable file bytes -> uint8 `[H, W, 3]`."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), np.uint8)


def jpeg_at_least(image, num_bytes: int) -> tuple[int, bytes]:
    """The smallest-quality JPEG whose file has at least `num_bytes` bytes.

    Used to compare against a file of `num_bytes`: JPEG gets at least as many
    bytes. If even quality 95 is smaller, that file is returned.

    Returns:
      `(quality, file_bytes)`.
    """
    lo, hi = 1, 95
    best = (hi, encode_jpeg(image, hi))
    if len(best[1]) < num_bytes:
        return best
    while lo <= hi:  # file size grows with quality, so bisect on quality
        mid = (lo + hi) // 2
        data = encode_jpeg(image, mid)
        if len(data) >= num_bytes:
            best, hi = (mid, data), mid - 1
        else:
            lo = mid + 1
    return best
