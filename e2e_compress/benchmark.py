"""Resource measurements of the codec: a large image, and what tiling costs.

`large_image` builds a photo mosaic of the requested size, then compresses
and decompresses it through the command line in child processes, measuring
each one's wall time and peak resident memory (`ru_maxrss` of the child).
`tiling_cost` codes one image whole and through tiles and compares bytes and
PSNR.
"""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from e2e_compress import codec, image_io, metrics, tiling


def photo_mosaic(paths: list[str], height: int, width: int) -> np.ndarray:
    """uint8 `[height, width, 3]` tiled from the photos (portrait ones turned
    to landscape, each cropped to 512x768), repeating them as needed."""
    tiles = []
    for path in paths:
        image = image_io.read_image(path)
        if image.shape[0] > image.shape[1]:
            image = np.rot90(image)
        if image.shape[0] >= 512 and image.shape[1] >= 768:
            tiles.append(image[:512, :768])
    if not tiles:
        raise ValueError("no photo of at least 512x768 px for the mosaic")
    rows, cols = -(-height // 512), -(-width // 768)
    grid = [np.concatenate([tiles[(r * cols + c) % len(tiles)]
                            for c in range(cols)], axis=1) for r in range(rows)]
    return np.ascontiguousarray(np.concatenate(grid, axis=0)[:height, :width])


def _run_measured(args: list[str]) -> dict:
    """Runs the CLI in a child; wall seconds and peak RSS in MB."""
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "e2e_compress", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.time() - start
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stdout.close()
    proc.stderr.close()
    if status != 0:
        raise RuntimeError(f"e2e-compress {args[0]} failed: {stderr.strip()}")
    return dict(seconds=round(seconds, 2),
                peak_rss_mb=round(usage.ru_maxrss / 1024.0, 1))


def large_image(model_path: str, paths: list[str], height: int, width: int
                ) -> dict:
    """Compress + decompress of a `height` x `width` mosaic via the CLI."""
    image = photo_mosaic(paths, height, width)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "large.png")
        image_io.write_png(src, image)
        coded = os.path.join(tmp, "large.e2ec")
        out = os.path.join(tmp, "large_decoded.png")
        enc = _run_measured(["compress", f"--model={model_path}", src, coded])
        dec = _run_measured(["decompress", coded, out, f"--model={model_path}"])
        num_bytes = os.path.getsize(coded)
        decoded = image_io.read_image(out)
    tiles = (-(-height // tiling.TILE_SIZE)) * (-(-width // tiling.TILE_SIZE))
    return dict(
        height=height, width=width, megapixels=round(height * width / 1e6, 2),
        tiles=tiles if tiling.needs_tiling(height, width) else 1,
        tile_size=tiling.TILE_SIZE, bytes=num_bytes,
        bpp=round(metrics.bpp_from_num_bytes(num_bytes, height, width), 4),
        psnr_rgb=round(metrics.psnr(image, decoded), 3),
        compress=enc, decompress=dec,
        note="compress includes reading the PNG; decompress includes writing"
             " it; each is a fresh process (TensorFlow start-up included)")


def tiling_cost(model_path: str, image_path: str, tile_size: int) -> dict:
    """One image coded whole and through `tile_size` tiles."""
    model = codec.load_model(model_path)
    image = image_io.read_image(image_path)
    height, width = image.shape[:2]
    whole = model.module.compress(image)[0]
    whole_decoded = model.module.decompress(
        whole, [height, width], [-(-height // 16), -(-width // 16)]).numpy()
    latents = tiling.analyse(model.module, image, tile_size)
    tiled = model.module.compress_latents(latents)
    rounded = model.module.decompress_latents(
        tiled, [-(-height // 16), -(-width // 16)]).numpy()
    tiled_decoded = tiling.synthesise(model.module, rounded, height, width,
                                      tile_size)
    whole_bytes = len(whole.numpy()[0]) + 29
    tiled_bytes = len(tiled.numpy()[0]) + 29
    return dict(
        image=os.path.basename(image_path), tile_size=tile_size,
        tiles=(-(-height // tile_size)) * (-(-width // tile_size)),
        whole=dict(bytes=whole_bytes, bpp=round(metrics.bpp_from_num_bytes(
            whole_bytes, height, width), 5),
            psnr_rgb=round(metrics.psnr(image, whole_decoded), 4)),
        tiled=dict(bytes=tiled_bytes, bpp=round(metrics.bpp_from_num_bytes(
            tiled_bytes, height, width), 5),
            psnr_rgb=round(metrics.psnr(image, tiled_decoded), 4)),
        pixels_differing=int(np.sum(np.any(whole_decoded != tiled_decoded, -1))),
        max_level_difference=int(np.abs(whole_decoded.astype(int)
                                        - tiled_decoded).max()))
