"""Published rate-distortion points, for plots and BD-rates.

BLS2017: Balle, Laparra & Simoncelli (ICLR 2017), their published Kodak curve
(mean over the 24 images): bpp, PSNR on RGB, PSNR on luma Y', MS-SSIM on RGB.
"""

BLS2017_KODAK = {
    "name": "BLS2017 (paper)",
    "description": "Balle, Laparra & Simoncelli, ICLR 2017: published Kodak points",
    "results": {
        "bpp": [0.119752, 0.194591, 0.316000, 0.481060, 0.721303, 1.060841,
                1.458681, 1.957564],
        "psnr-rgb": [26.775, 28.349, 30.021, 31.730, 33.686, 35.816, 38.020,
                     40.134],
        "psnr-y": [27.121, 28.714, 30.432, 32.190, 34.241, 36.497, 38.907,
                   41.240],
        "ms-ssim-rgb": [0.90370, 0.93104, 0.95478, 0.96914, 0.98082, 0.98676,
                        0.99209, 0.99497],
    },
}

KODAK_IMAGES = frozenset(f"kodim{i:02d}.png" for i in range(1, 25))


def is_kodak(results: list[dict]) -> bool:
    """Whether the paper's Kodak curve is a fair comparison for `results`.

    Args:
      results: result dicts as `evaluate.write_result` writes them; each
        lists the file names it was measured on under "images".

    Returns:
      True when every result was measured on exactly the 24 Kodak images
      (kodim01.png ... kodim24.png), False otherwise: a mean over other
      images cannot be compared with a mean over Kodak.
    """
    return bool(results) and all(
        set(r.get("images") or ()) == KODAK_IMAGES for r in results)
