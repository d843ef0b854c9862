"""Shared fixtures: tiny images written to disk and a tiny exported model."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "e2e_compress", "samples", "kodim23.png")


def smooth_image(height, width, seed=0):
    """A smooth random colour image, uint8 [H, W, 3] (compresses like a photo)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (max(2, height // 8), max(2, width // 8), 3))
    im = Image.fromarray(small.astype(np.uint8)).resize((width, height),
                                                        Image.BILINEAR)
    noise = rng.normal(0, 4, (height, width, 3))
    return np.clip(np.asarray(im, np.float64) + noise, 0, 255).astype(np.uint8)


def write_images(folder, count=4, height=48, width=64):
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"img{i}.png")
        Image.fromarray(smooth_image(height, width, seed=i)).save(path)
        paths.append(path)
    return paths


def run_cli(*args, timeout=300, env=None):
    """Runs `python -m e2e_compress ARGS`; returns the CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "e2e_compress", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=full_env)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny (8-filter) model trained for two steps and exported."""
    from e2e_compress import configs, train

    root = tmp_path_factory.mktemp("tiny")
    write_images(str(root / "images"))
    train.train(
        configs.TINY_MODEL,
        configs.TrainConfig(train_glob=str(root / "images" / "*.png"),
                            patch_size=configs.TINY_PATCH, batch_size=2, steps=2,
                            checkpoint_every=1),
        str(root / "run"), export_to=str(root / "model"), verbose=0)
    return str(root / "model")
