"""Running the transforms over tiles of a large image, without seams.

A 6000x4000 image through the whole-image graphs needs several GB (the first
analysis stage alone is 1500x1000x128 floats, and GDN keeps a few of those).
Here each transform runs on one tile at a time, with a halo of context wide
enough to cover its receptive field, and only the tile's core is kept:

- analysis: a latent depends on pixels within 28 px of its centre (9x9 at
  stride 4, then 5x5 at strides 8 and 16: 4 + 8 + 16), so a 32 px halo makes
  every core latent exactly what the whole image would give;
- synthesis: a pixel depends on latents within 1.75 latents, so a halo of 2
  latents does the same.

The latents are then entropy-coded in one piece, exactly as for a whole
image, so the file format is unchanged and tiling costs no bits; decoded
pixels differ from whole-image decoding only by float rounding (at most one
8-bit level, at a few pixels). Which path is taken depends only on the image
size, so a file always decodes to the same pixels.

Images are uint8 `[H, W, 3]`; latents float32 `[1, h, w, C]` with
h = ceil(H / 16), w = ceil(W / 16).
"""

import numpy as np

STRIDE = 16
ANALYSIS_HALO = 32  # pixels, a multiple of STRIDE
SYNTHESIS_HALO = 2  # latents
TILE_SIZE = 1024  # pixels of core per tile side, a multiple of STRIDE


def needs_tiling(height: int, width: int, tile_size: int | None = None) -> bool:
    """Whether an image of this size goes through the tiled path."""
    tile_size = tile_size or TILE_SIZE
    return height > tile_size or width > tile_size


def _spans(length: int, core: int, halo: int):
    """(start, stop, core_start, core_stop) of each tile along one axis."""
    for start in range(0, length, core):
        stop = min(start + core, length)
        yield max(start - halo, 0), min(stop + halo, length), start, stop


def _check(module, tile_size):
    tile_size = tile_size or TILE_SIZE
    if tile_size <= 0 or tile_size % STRIDE:
        raise ValueError(
            f"tile_size must be a positive multiple of {STRIDE}, got {tile_size}")
    if not hasattr(module, "analyse_tile"):
        raise ValueError(
            "this SavedModel has no tile functions (exported before tiling "
            "existed); re-export it to code images larger than "
            f"{TILE_SIZE} px a side")
    return tile_size


def analyse(module, image: np.ndarray, tile_size: int | None = None
            ) -> np.ndarray:
    """Latents of a whole image, computed tile by tile.

    Args:
      module: a loaded SavedModel of `export.CompressionModule`.
      image: uint8 `[H, W, 3]`.
      tile_size: core size of a tile in pixels, a multiple of 16; default
        `TILE_SIZE`.

    Returns:
      float32 `[1, ceil(H/16), ceil(W/16), C]`, the analysis transform of the
      image edge-replicated to multiples of 16 (as `compress` does).
    """
    tile_size = _check(module, tile_size)
    height, width = image.shape[:2]
    h, w = -(-height // STRIDE), -(-width // STRIDE)
    padded = np.pad(image, ((0, h * STRIDE - height), (0, w * STRIDE - width),
                            (0, 0)), mode="edge")
    latents = None
    for r0, r1, cr0, cr1 in _spans(h * STRIDE, tile_size, ANALYSIS_HALO):
        for c0, c1, cc0, cc1 in _spans(w * STRIDE, tile_size, ANALYSIS_HALO):
            tile = padded[r0:r1, c0:c1].astype(np.float32)[None]
            y = module.analyse_tile(tile).numpy()
            if latents is None:
                latents = np.empty((1, h, w, y.shape[-1]), np.float32)
            top, left = (cr0 - r0) // STRIDE, (cc0 - c0) // STRIDE
            rows, cols = (cr1 - cr0) // STRIDE, (cc1 - cc0) // STRIDE
            latents[0, cr0 // STRIDE:cr1 // STRIDE, cc0 // STRIDE:cc1 // STRIDE] = (
                y[0, top:top + rows, left:left + cols])
    return latents


def synthesise(module, latents: np.ndarray, height: int, width: int,
               tile_size: int | None = None) -> np.ndarray:
    """Decoded image from (rounded) latents, computed tile by tile.

    Args:
      module: a loaded SavedModel of `export.CompressionModule`.
      latents: float32 `[1, h, w, C]`.
      height, width: the image size, at most 16h x 16w.
      tile_size: core size of a tile in pixels, a multiple of 16; default
        `TILE_SIZE`.

    Returns:
      uint8 `[height, width, 3]`, rounded half to even and clipped as
      `decompress` does.
    """
    tile_size = _check(module, tile_size)
    _, h, w, _ = latents.shape
    core = tile_size // STRIDE
    image = np.empty((height, width, 3), np.uint8)
    for r0, r1, cr0, cr1 in _spans(h, core, SYNTHESIS_HALO):
        for c0, c1, cc0, cc1 in _spans(w, core, SYNTHESIS_HALO):
            x = module.synthesise_tile(latents[:, r0:r1, c0:c1]).numpy()[0]
            top, left = (cr0 - r0) * STRIDE, (cc0 - c0) * STRIDE
            rows = min(cr1 * STRIDE, height) - cr0 * STRIDE
            cols = min(cc1 * STRIDE, width) - cc0 * STRIDE
            if rows <= 0 or cols <= 0:
                continue
            block = x[top:top + rows, left:left + cols]
            image[cr0 * STRIDE:cr0 * STRIDE + rows,
                  cc0 * STRIDE:cc0 * STRIDE + cols] = np.clip(
                      np.rint(block), 0, 255).astype(np.uint8)
    return image
