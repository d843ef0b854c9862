"""Classical codecs through Pillow, in memory, at their strongest settings.

Each codec encodes uint8 `[H, W, 3]` at one setting to the complete file
bytes (every header counted) and decodes them back. Settings:

| codec | library (via Pillow) | settings | swept over |
| --- | --- | --- | --- |
| `jpeg` | libjpeg-turbo | 4:2:0 chroma, optimised Huffman tables | quality 5-95 |
| `jpeg2000` | OpenJPEG | irreversible 9/7 wavelet, colour transform (`mct=1`), one quality layer at the target rate, raw codestream (`.j2k`, no JP2 box) | target 0.08-2.4 bpp |
| `webp` | libwebp | lossy, `method=6` (slowest, best) | quality 0-95 |
| `avif` | libaom via libavif | 4:2:0, `speed=4` | quality 10-90 |

Without `mct=1`, Pillow codes R, G and B separately and JPEG 2000 loses about
3 dB. AVIF at `speed=2` is ~1% smaller than `speed=4` at 4x the time on
Kodak; `speed` is a constructor argument for whoever wants it.
"""

import dataclasses
import io

import numpy as np
from PIL import Image


def decode(data: bytes) -> np.ndarray:
    """Any Pillow-readable file bytes -> uint8 `[H, W, 3]`."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), np.uint8)


def _save(image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8), "RGB").save(buf, fmt, **kwargs)
    return buf.getvalue()


def encode_jpeg(image, quality: int) -> bytes:
    """JPEG file bytes at `quality` (1-95), 4:2:0, optimised Huffman."""
    return _save(image, "JPEG", quality=int(quality), subsampling="4:2:0",
                 optimize=True)


def encode_jpeg2000(image, target_bpp: float) -> bytes:
    """JPEG 2000 codestream at about `target_bpp` (OpenJPEG rate control)."""
    ratio = 24.0 / float(target_bpp)  # compression ratio w.r.t. 24-bit RGB
    return _save(image, "JPEG2000", quality_mode="rates", quality_layers=[ratio],
                 irreversible=True, mct=1, no_jp2=True)


def encode_webp(image, quality: int) -> bytes:
    return _save(image, "WEBP", quality=int(quality), method=6)


def encode_avif(image, quality: int, speed: int = 4) -> bytes:
    return _save(image, "AVIF", quality=int(quality), speed=speed,
                 subsampling="4:2:0")


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A classical codec and the settings it is swept over."""

    name: str
    description: str
    encode: object  # (image, setting) -> bytes
    settings: tuple

    def decode(self, data: bytes) -> np.ndarray:
        return decode(data)


BASELINES = {
    "jpeg": Baseline(
        "JPEG", "libjpeg-turbo via Pillow, 4:2:0, optimised Huffman; setting ="
        " quality", encode_jpeg, (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)),
    "jpeg2000": Baseline(
        "JPEG 2000", "OpenJPEG via Pillow, irreversible 9/7, mct=1, one layer at"
        " the target rate, raw codestream; setting = target bpp", encode_jpeg2000,
        (0.08, 0.12, 0.18, 0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 1.9, 2.4)),
    "webp": Baseline(
        "WebP", "libwebp via Pillow, method=6; setting = quality", encode_webp,
        (0, 10, 20, 35, 50, 65, 75, 85, 95)),
    "avif": Baseline(
        "AVIF", "libavif/libaom via Pillow, 4:2:0, speed=4; setting = quality",
        encode_avif, (10, 25, 40, 50, 60, 70, 80, 90)),
}


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
