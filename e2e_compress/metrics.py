"""Quality and rate measures.

Images are uint8 (or float) arrays `[H, W, 3]` in `[0, 255]`. PSNR is in dB
with peak 255; MS-SSIM is `tf.image.ssim_multiscale` with its default
5 scales and 11x11 Gaussian window (sigma 1.5), which needs at least 161 px a
side; its dB form is `-10 log10(1 - MS-SSIM)`.
"""

import math

import numpy as np

MS_SSIM_MIN_SIDE = 161


def bpp_from_num_bytes(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of a whole file: 8 * bytes / (H * W)."""
    return 8.0 * num_bytes / (height * width)


def mse(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.mean((a - b) ** 2))


def psnr(a, b) -> float:
    """PSNR in dB over all pixels and channels, peak 255; inf if identical."""
    m = mse(a, b)
    return math.inf if m == 0 else 10.0 * math.log10(255.0 ** 2 / m)


def luma(image) -> np.ndarray:
    """Y' of BT.601 from RGB in [0, 255]: 0.299 R + 0.587 G + 0.114 B."""
    image = np.asarray(image, np.float64)
    return image @ np.array([0.299, 0.587, 0.114])


def psnr_y(a, b) -> float:
    """PSNR (dB) of BT.601 luma Y'."""
    return psnr(luma(a), luma(b))


def ms_ssim(a, b) -> float:
    """MS-SSIM of two images in [0, 255], `[H, W, C]`.

    Raises:
      ValueError: a side is shorter than 161 px (5 scales of an 11-tap window
        do not fit).
    """
    import tensorflow as tf

    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(
            f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} px a side,"
            f" got {a.shape[0]}x{a.shape[1]}")
    return float(tf.image.ssim_multiscale(a, b, max_val=255.0))


def ms_ssim_y(a, b) -> float:
    """MS-SSIM of BT.601 luma Y'."""
    return ms_ssim(luma(a)[..., None], luma(b)[..., None])


def ms_ssim_db(value: float) -> float:
    """-10 log10(1 - MS-SSIM); inf for a perfect match."""
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)
