"""The shipped models: where they are, their names, finding one by id.

Shipped models are SavedModel directories under `checkpoints/` at the root of
the repository (or under `$E2E_COMPRESS_MODELS`, if set). Each holds
`assets/model_info.json`. Names say what was optimised and the quality step,
low to high rate: `bls2017-mse-q0` ... `bls2017-mse-q9` (optimised for MSE) and
`bls2017-msssim-q1` ... `-q8` (for MS-SSIM); `qN` is the lambda step below,
and the gaps in a family are models not trained yet.
"""

import os

from e2e_compress import export

DEFAULT_MODEL = "bls2017-mse-q4"

# lmbda per quality step for MSE models (loss = bpp + lmbda * MSE on 0-255).
# Steps 1-8 are the values CompressAI uses for its 8 qualities, on the same
# scale; step 0 (a third of step 1) reaches down to ~0.11 bpp. Step 9 (twice
# step 8) took the 128-filter models to ~1.45 bpp; with 192 filters step 4
# codes ~0.78 bpp, step 5 ~1.06, step 6 ~1.37 and step 7 ~1.7, and neither
# step 8 nor 9 ships.
MSE_LMBDAS = {0: 0.0006, 1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130,
              5: 0.0250, 6: 0.0483, 7: 0.0932, 8: 0.18, 9: 0.36}
# lmbda per quality step for MS-SSIM models (`bls2017-msssim-qN`): loss =
# bpp + lmbda * (1 - MS-SSIM), MS-SSIM on RGB in [0, 1], so lmbda is in bits
# per pixel per unit of (1 - MS-SSIM). CompressAI's values, same scale.
MSSSIM_LMBDAS = {1: 2.40, 2: 4.58, 3: 8.73, 4: 16.64,
                 5: 31.73, 6: 60.50, 7: 115.37, 8: 220.0}


class ModelNotFoundError(LookupError):
    """No shipped or given model matches the name, path or id."""


def size_bytes(path: str) -> int:
    """Bytes on disk of a model directory (all its files)."""
    return sum(os.path.getsize(os.path.join(d, f))
               for d, _, files in os.walk(path) for f in files)


def lmbda_of_name(name: str) -> tuple[str, float] | None:
    """(distortion, lmbda) a shipped name promises, e.g. `bls2017-mse-q4` ->
    `("mse", 0.013)`; None for a name outside the scheme."""
    for prefix, distortion, table in (("bls2017-mse-q", "mse", MSE_LMBDAS),
                                      ("bls2017-msssim-q", "ms-ssim", MSSSIM_LMBDAS)):
        step = name[len(prefix):]
        if name.startswith(prefix) and step.isdigit() and int(step) in table:
            return distortion, table[int(step)]
    return None


def models_dir() -> str:
    """Directory of shipped models."""
    env = os.environ.get("E2E_COMPRESS_MODELS")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "checkpoints")


def list_models() -> dict[str, dict]:
    """Name -> model_info of every shipped model, sorted by name."""
    root = models_dir()
    found = {}
    if os.path.isdir(root):
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name)
            try:
                found[name] = dict(export.read_model_info(path), path=path)
            except (FileNotFoundError, ValueError):
                continue
    return found


def _lineage(info: dict):
    """A model's metadata, then each warm-start ancestor's, up to the first."""
    node = info
    while node:
        yield node
        node = node.get("init_from")


def training_totals(info: dict) -> dict:
    """Steps and hours of a model's training, its warm-start ancestors included.

    Args:
      info: a model's metadata (`export.read_model_info`); its `init_from`
        entries chain back to the model trained from scratch.

    Returns:
      `{"steps", "cpu_hours", "wall_hours", "generations"}`, summed over the
      chain (`generations` counts the runs).
    """
    totals = {"steps": 0, "cpu_hours": 0.0, "wall_hours": 0.0, "generations": 0}
    for node in _lineage(info):
        totals["steps"] += int(node.get("steps") or 0)
        totals["cpu_hours"] += float(node.get("cpu_hours") or 0.0)
        totals["wall_hours"] += float(node.get("wall_hours") or 0.0)
        totals["generations"] += 1
    totals["cpu_hours"] = round(totals["cpu_hours"], 3)
    totals["wall_hours"] = round(totals["wall_hours"], 3)
    return totals


def distinct_cpu_hours(infos) -> float:
    """CPU hours of the training runs behind several models, each run once.

    Models warm-started from a common ancestor share its runs, so summing
    `training_totals` over them counts those runs once per model. Here a run
    is known by the `model_id` it exported, or, for the few early runs
    recorded without one, by its path, steps and hours.

    Args:
      infos: model metadata dicts (`export.read_model_info`), each with its
        `init_from` chain.

    Returns:
      The CPU hours of the distinct runs, rounded to 0.001.
    """
    runs = {}
    for info in infos:
        for node in _lineage(info):
            key = node.get("model_id") or (node.get("path"), node.get("steps"),
                                           node.get("cpu_hours"))
            runs[key] = float(node.get("cpu_hours") or 0.0)
    return round(sum(runs.values()), 3)


def resolve(name_or_path: str | None) -> str:
    """A model's directory from a shipped name, a path, or None (default)."""
    name_or_path = name_or_path or DEFAULT_MODEL
    if os.path.isdir(name_or_path):
        export.read_model_info(name_or_path)  # raises if not a model
        return name_or_path
    path = os.path.join(models_dir(), name_or_path)
    if os.path.isdir(path):
        return path
    names = ", ".join(list_models()) or "none"
    raise ModelNotFoundError(
        f"no model {name_or_path!r}: not a directory, nor a shipped model"
        f" (shipped: {names})")


def find_by_id(model_id: str, extra: str | None = None) -> str:
    """The directory of the model whose id is `model_id`.

    Args:
      model_id: 16 hex digits, from a file header.
      extra: a model name or path to try first (the user's `--model`).
    """
    if extra:
        path = resolve(extra)
        info = export.read_model_info(path)
        if info["model_id"] != model_id:
            raise ModelNotFoundError(
                f"the file was made by model {model_id}, but {extra} is model"
                f" {info['model_id']}")
        return path
    for info in list_models().values():
        if info["model_id"] == model_id:
            return info["path"]
    raise ModelNotFoundError(
        f"the file was made by model {model_id}, which is not among the shipped"
        f" models in {models_dir()}: pass --model=PATH of that model")
