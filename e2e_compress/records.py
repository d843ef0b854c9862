"""A shipped model's record: how it was trained and what it measures.

`checkpoints/<name>/record.json` is what `e2e-compress models` prints and
what a reader of the model zoo checks: the model's own training run (steps,
CPU and wall hours, patch and batch size, learning-rate schedule per
segment, quantization, convolution dtype, training data and its licence
note), its warm-start chain back to the model trained from scratch, the
totals over that chain, and its Kodak measurements from an evaluation run
(`evaluate --same_size_jpeg` writes `results/kodak/<name>_vs_jpeg.json`:
whole-file bpp and quality, the smallest JPEG at least as large, and the
range coder's bits against the entropy model's estimate). Everything is read
from the model's own metadata (`assets/model_info.json`) and that results
file, so a record can be rebuilt from a clean checkout.
"""

import json
import os

from e2e_compress import export, zoo

RECORD = "record.json"
# The training facts of one run, as `train._export_info` stores them.
_RUN_KEYS = ("steps", "cpu_hours", "wall_hours", "patch_size", "batch_size",
             "learning_rate", "lr_decay_at", "lr_decay_factor",
             "prior_lr_factor", "quantization", "segments")
_PARENT_KEYS = ("path", "model_id", "lmbda", "num_filters", "steps",
                "cpu_hours", "wall_hours", "latent_scale")


def _model_bytes(model_dir: str) -> int:
    """Bytes of the model's files, its record aside."""
    record = os.path.join(model_dir, RECORD)
    extra = os.path.getsize(record) if os.path.exists(record) else 0
    return zoo.size_bytes(model_dir) - extra


def warm_start_chain(info: dict) -> list[dict]:
    """The model's warm-start ancestors, nearest first: each one's path,
    model id, lmbda, filters, steps and hours (as far as recorded), and the
    latent scale applied when the child started from it."""
    chain = []
    node = info.get("init_from")
    while node:
        chain.append({k: node[k] for k in _PARENT_KEYS if node.get(k) is not None})
        node = node.get("init_from")
    return chain


def model_record(model_dir: str, vs_jpeg: dict) -> dict:
    """The record of the exported model at `model_dir`.

    Args:
      model_dir: an exported model (SavedModel with `assets/model_info.json`).
      vs_jpeg: the model's `evaluate.compare_with_jpeg_at_same_size` result.

    Raises:
      ValueError: `vs_jpeg` was measured on another model (its `model_id`
        differs), so its numbers would describe the wrong weights.
    """
    info = export.read_model_info(model_dir)
    name = os.path.basename(os.path.normpath(model_dir))
    if vs_jpeg.get("model_id") != info["model_id"]:
        raise ValueError(
            f"{name} is model {info['model_id']}, but the measurements given"
            f" are of model {vs_jpeg.get('model_id')}: evaluate it again")
    totals = zoo.training_totals(info)
    data = dict(info.get("training_data") or {})
    return {
        "name": name,
        "model_id": info["model_id"],
        "distortion": info["distortion"],
        "lmbda": info["lmbda"],
        "num_filters": info["num_filters"],
        "kernel_dtype": info.get("kernel_dtype", "float32"),
        "size_bytes": _model_bytes(model_dir),
        "training_data": data.get("note") or data.get("glob"),
        "training": {k: info[k] for k in _RUN_KEYS if k in info},
        "warm_start_chain": warm_start_chain(info),
        "total_steps": totals["steps"],
        "total_cpu_hours": totals["cpu_hours"],
        "total_wall_hours": totals["wall_hours"],
        "generations": totals["generations"],
        "totals_note": "steps and hours of this model and of every warm-start"
                       " ancestor",
        "kodak": vs_jpeg["mean"]["ours"],
        "kodak_jpeg_same_size": vs_jpeg["mean"]["jpeg"],
        "range_coding": vs_jpeg["range_coding"],
        "kodak_note": "mean over the Kodak images; bpp of whole .e2ec files;"
                      " JPEG: smallest quality at least as large, per image",
    }


def write_records(results_dir: str) -> list[str]:
    """Writes `record.json` into every shipped model that has a matching
    `<name>_vs_jpeg.json` in `results_dir`; returns the models written.
    A results file of other weights (an older version of the model) is
    skipped, leaving that model's record as it was."""
    written = []
    for name, info in zoo.list_models().items():
        path = os.path.join(results_dir, f"{name}_vs_jpeg.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            vs_jpeg = json.load(f)
        if vs_jpeg.get("model_id") != info["model_id"]:
            continue
        record = model_record(info["path"], vs_jpeg)
        target = os.path.join(info["path"], RECORD)
        with open(target + ".tmp", "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
        os.replace(target + ".tmp", target)
        written.append(name)
    return written
