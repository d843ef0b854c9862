"""Choosing, per image, the shipped model that meets a rate or quality target.

A user asks for "at most 0.5 bpp" or "at least 32 dB", not for a lambda. The
models of one family (e.g. `bls2017-mse-*`), ordered by lambda, give files
whose size and PSNR both grow with lambda, so a bisection over them finds the
best model with about log2(N) encodings of the image:

- `target_bpp`: the largest file whose whole-file bpp is <= the target (the
  best quality that fits); if even the lowest-rate model exceeds it, that
  model's file, marked as missing the target;
- `target_psnr`: the smallest file whose PSNR-RGB is >= the target; if no
  model reaches it, the highest-quality file, marked as missing the target.
"""

import dataclasses
import fnmatch

from e2e_compress import codec, metrics, zoo

DEFAULT_FAMILY = "bls2017-mse-*"


@dataclasses.dataclass(frozen=True)
class Choice:
    """The file chosen for an image.

    Attributes:
      model: the `codec.LoadedModel` that made it.
      data: the `.e2ec` file bytes.
      bpp: whole-file bits per pixel.
      psnr: PSNR-RGB in dB of the decoded image (None if not measured).
      met: whether the target is met.
      tried: number of models the image was encoded with.
    """

    model: object
    data: bytes
    bpp: float
    psnr: float | None
    met: bool
    tried: int


def family(pattern: str | None = None) -> list[str]:
    """Paths of the shipped models matching a name glob, by ascending lambda.

    Raises:
      zoo.ModelNotFoundError: none matches.
    """
    pattern = pattern or DEFAULT_FAMILY
    found = [info for name, info in zoo.list_models().items()
             if fnmatch.fnmatchcase(name, pattern)]
    if not found:
        raise zoo.ModelNotFoundError(
            f"no shipped model matches {pattern!r} (shipped: "
            f"{', '.join(zoo.list_models()) or 'none'})")
    return [info["path"] for info in sorted(found, key=lambda i: i["lmbda"])]


def first_true(n: int, predicate) -> int:
    """The smallest i in [0, n) with predicate(i), for a predicate that is
    False then True along i; n if it is never True."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if predicate(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def choose(models: list, image, target_bpp: float | None = None,
           target_psnr: float | None = None) -> Choice:
    """Encodes `image` with the model that meets the target best.

    Args:
      models: `codec.LoadedModel`s ordered by ascending rate (lambda).
      image: uint8 `[H, W, 3]`.
      target_bpp: maximum whole-file bits per pixel; or
      target_psnr: minimum PSNR-RGB in dB (exactly one of the two).
    """
    if (target_bpp is None) == (target_psnr is None):
        raise ValueError("give exactly one of target_bpp and target_psnr")
    if target_bpp is not None and target_bpp <= 0:
        raise ValueError(f"target_bpp must be > 0, got {target_bpp}")
    if not models:
        raise ValueError("no models to choose from")
    height, width = image.shape[:2]
    cache = {}

    def coded(i):
        if i not in cache:
            data = codec.compress(models[i], image)
            psnr = None
            if target_psnr is not None:
                psnr = metrics.psnr(image, codec.decompress(data, models[i]))
            cache[i] = (data, metrics.bpp_from_num_bytes(len(data), height, width),
                        psnr)
        return cache[i]

    n = len(models)
    if target_bpp is not None:
        index = first_true(n, lambda i: coded(i)[1] > target_bpp) - 1
        met = index >= 0
        index = max(index, 0)
    else:
        index = first_true(n, lambda i: coded(i)[2] >= target_psnr)
        met = index < n
        index = min(index, n - 1)
    data, bpp, psnr = coded(index)
    return Choice(model=models[index], data=data, bpp=bpp, psnr=psnr, met=met,
                  tried=len(cache))
