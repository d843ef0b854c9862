"""Rate-distortion evaluation of any codec over a set of images.

One result shape for learned and classical codecs, CompressAI's:

    {"name": ..., "description": ...,
     "results": {"bpp": [...], "psnr-rgb": [...], ...},   # one mean per setting
     "settings": [...], "images": [...], "per_image": {...}, "failures": [...]}

Rates are whole-file bits per pixel (every header and checksum counted).
Qualities: PSNR (dB, peak 255) and MS-SSIM on RGB and on BT.601 luma Y';
`ms-ssim-rgb-db` is -10 log10(1 - mean MS-SSIM). Times are seconds per image.
An image that fails to load or code is reported in `failures` and left out
of every mean.
"""

import dataclasses
import glob as globlib
import json
import os
import time

import numpy as np
from absl import logging

from e2e_compress import baselines, container, image_io, metrics, zoo

METRICS = ("bpp", "psnr-rgb", "psnr-y", "ms-ssim-rgb", "ms-ssim-y",
           "encoding_time", "decoding_time")


@dataclasses.dataclass(frozen=True)
class LearnedCodec:
    """One or more exported models; each model is one setting (one RD point)."""

    name: str
    description: str
    settings: tuple  # model directories
    # Loaded models by setting. `codec.load_model`'s cache holds 8 models; a
    # curve of more, visited in turn for each image, would reload every time
    # (measured: 1.3 s an encode instead of 0.25 s with 9 models).
    _models: dict = dataclasses.field(default_factory=dict, repr=False,
                                      compare=False)

    def _model(self, setting):
        from e2e_compress import codec
        if setting not in self._models:
            self._models[setting] = codec.load_model(setting)
        return self._models[setting]

    def encode(self, image, setting) -> bytes:
        from e2e_compress import codec
        return codec.compress(self._model(setting), image)

    def decode(self, data: bytes, setting) -> np.ndarray:
        from e2e_compress import codec
        return codec.decompress(data, self._model(setting))


def make_codec(spec: str, settings: tuple | None = None):
    """A codec from a baseline name, a shipped model name or glob, or a path.

    `bls2017-mse-*` groups every matching shipped model into one curve.
    `settings` replaces a baseline's sweep (e.g. JPEG qualities `(20, 50)`).
    """
    if spec in baselines.BASELINES:
        b = baselines.BASELINES[spec]
        if settings is not None:
            b = dataclasses.replace(b, settings=tuple(settings))
        return _BaselineCodec(b)
    if settings is not None:
        raise ValueError(f"settings apply to baselines, not to {spec!r}")
    if any(c in spec for c in "*?["):
        shipped = zoo.list_models()
        names = [n for n in shipped if globlib.fnmatch.fnmatch(n, spec)]
        if not names:
            raise zoo.ModelNotFoundError(f"no shipped model matches {spec!r}")
        paths = tuple(shipped[n]["path"] for n in names)
        return LearnedCodec(spec.replace("*", "").rstrip("-_") or spec,
                            f"e2e-compress models {', '.join(names)}", paths)
    path = zoo.resolve(spec)
    name = os.path.basename(os.path.normpath(path))
    return LearnedCodec(name, f"e2e-compress model {name}", (path,))


@dataclasses.dataclass(frozen=True)
class _BaselineCodec:
    baseline: baselines.Baseline

    @property
    def name(self):
        return self.baseline.name

    @property
    def description(self):
        return self.baseline.description

    @property
    def settings(self):
        return self.baseline.settings

    def encode(self, image, setting):
        return self.baseline.encode(image, setting)

    def decode(self, data, setting):
        return self.baseline.decode(data)


def list_image_files(images: str) -> list[str]:
    """A folder (its PNG/JPEG files) or a glob -> sorted paths."""
    if os.path.isdir(images):
        pattern = os.path.join(images, "*")
        paths = [p for p in globlib.glob(pattern)
                 if p.lower().endswith((".png", ".jpg", ".jpeg", ".ppm", ".bmp"))]
    else:
        paths = globlib.glob(images)
    if not paths:
        raise FileNotFoundError(f"no images in {images!r}")
    return sorted(paths)


def measure(image, decoded, num_bytes, encode_s, decode_s) -> dict:
    """All metrics of one coded image (see the module docstring)."""
    h, w = image.shape[:2]
    out = {"bpp": metrics.bpp_from_num_bytes(num_bytes, h, w),
           "psnr-rgb": metrics.psnr(image, decoded),
           "psnr-y": metrics.psnr_y(image, decoded),
           "encoding_time": encode_s, "decoding_time": decode_s}
    if min(h, w) >= metrics.MS_SSIM_MIN_SIDE:
        out["ms-ssim-rgb"] = metrics.ms_ssim(image, decoded)
        out["ms-ssim-y"] = metrics.ms_ssim_y(image, decoded)
    else:  # documented fallback: MS-SSIM is undefined below 161 px
        out["ms-ssim-rgb"] = out["ms-ssim-y"] = float("nan")
    return out


def evaluate_codec(codec, paths: list[str], progress: bool = True) -> dict:
    """Codes every image at every setting; returns the result record."""
    from tqdm import tqdm

    per_image, failures, done = {}, [], []
    bar = tqdm(total=len(paths) * len(codec.settings), desc=codec.name,
               disable=not progress, unit="code")
    for path in paths:
        rows = []
        try:
            image = image_io.read_image(path)
            for setting in codec.settings:
                t0 = time.perf_counter()
                data = codec.encode(image, setting)
                t1 = time.perf_counter()
                decoded = codec.decode(data, setting)
                t2 = time.perf_counter()
                rows.append(measure(image, decoded, len(data), t1 - t0, t2 - t1))
                bar.update()
        except Exception as e:  # noqa: BLE001 - one bad image must not end a run
            logging.warning("%s failed on %s: %s", codec.name, path, e)
            failures.append({"image": path, "error": str(e)})
            bar.update(len(codec.settings) - len(rows))
            continue
        name = os.path.basename(path)
        done.append(name)
        per_image[name] = {k: [r[k] for r in rows] for k in METRICS}
    bar.close()
    results = {k: [] for k in METRICS}
    for i in range(len(codec.settings)):
        for k in METRICS:
            values = [per_image[n][k][i] for n in done]
            results[k].append(float(np.mean(values)) if values else float("nan"))
    results["ms-ssim-rgb-db"] = [metrics.ms_ssim_db(v) for v in results["ms-ssim-rgb"]]
    results["ms-ssim-y-db"] = [metrics.ms_ssim_db(v) for v in results["ms-ssim-y"]]
    settings = [os.path.basename(os.path.normpath(s)) if isinstance(s, str) else s
                for s in codec.settings]
    return {"name": codec.name, "description": codec.description,
            "results": results, "settings": settings, "images": done,
            "per_image": per_image, "failures": failures,
            "notes": "bpp counts whole files; means over images per setting"}


def write_result(result: dict, output_dir: str) -> str:
    """Writes `output_dir/<name>.json` (name lower-cased, spaces to dashes)."""
    os.makedirs(output_dir, exist_ok=True)
    slug = result["name"].lower().replace(" ", "-")
    path = os.path.join(output_dir, f"{slug}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, path)
    return path


def compare_with_jpeg_at_same_size(model_path: str, paths: list[str],
                                   progress: bool = True) -> dict:
    """Per image: the model's file beside the smallest JPEG at least as large.

    JPEG (4:2:0, optimised Huffman) gets at least as many bytes as our file,
    so a higher PSNR for us at a lower or equal size is a clean win.

    Returns:
      `{"model", "images": {name: {"ours": {...}, "jpeg": {..., "quality"}}},
      "mean": {"ours": {...}, "jpeg": {...}}, "range_coding": {...}}` with
      the metrics of `measure`; `range_coding` sets the payload bits actually
      written against the entropy model's estimate, over all images.
    """
    from tqdm import tqdm

    from e2e_compress import codec

    model = codec.load_model(model_path)
    per_image = {}
    for path in tqdm(paths, desc="vs JPEG", disable=not progress):
        image = image_io.read_image(path)
        t0 = time.perf_counter()
        data = codec.compress(model, image)
        t1 = time.perf_counter()
        decoded = codec.decompress(data, model)
        t2 = time.perf_counter()
        ours = measure(image, decoded, len(data), t1 - t0, t2 - t1)
        ours["payload_bits"] = 8 * (len(data) - container.OVERHEAD_BYTES)
        ours["estimate_bits"] = codec.estimate_bits(model, image)
        t0 = time.perf_counter()
        quality_setting, jpeg = baselines.jpeg_at_least(image, len(data))
        t1 = time.perf_counter()
        jpeg_decoded = baselines.decode(jpeg)
        t2 = time.perf_counter()
        theirs = measure(image, jpeg_decoded, len(jpeg), t1 - t0, t2 - t1)
        theirs["quality"] = quality_setting
        per_image[os.path.basename(path)] = {"ours": ours, "jpeg": theirs}
    mean = {side: {k: float(np.mean([v[side][k] for v in per_image.values()]))
                   for k in METRICS}
            for side in ("ours", "jpeg")}
    payload = sum(v["ours"]["payload_bits"] for v in per_image.values())
    estimate = sum(v["ours"]["estimate_bits"] for v in per_image.values())
    return {"model": os.path.basename(os.path.normpath(model_path)),
            "model_id": model.model_id, "images": per_image, "mean": mean,
            "range_coding": {
                "payload_bits": payload, "estimate_bits": estimate,
                "excess_percent": (payload / estimate - 1.0) * 100.0,
                "note": "payload: file minus the fixed header and CRC"
                        f" ({container.OVERHEAD_BYTES} bytes); estimate: the"
                        " entropy model's bits for the rounded latents"},
            "notes": "JPEG: smallest quality whose file is at least as large as"
                     " ours (encoding_time includes that search)"}
