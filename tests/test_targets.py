"""Choosing the model that meets a bpp or PSNR target."""

import dataclasses

import numpy as np
import pytest

from e2e_compress import codec, targets, zoo
from tests.conftest import run_cli, smooth_image


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_first_true_finds_the_boundary(n):
    for boundary in range(n + 1):
        calls = []

        def predicate(i):
            calls.append(i)
            return i >= boundary

        assert targets.first_true(n, predicate) == boundary
        assert len(calls) <= max(1, int(np.ceil(np.log2(n + 1))))


@dataclasses.dataclass
class _FakeModel:
    bytes_: int
    error: int
    model_id: str = "0123456789abcdef"


def test_choose_picks_the_best_file_within_the_target(monkeypatch):
    # Five models: file sizes grow and errors shrink with lambda.
    models = [_FakeModel(b, e) for b, e in
              [(100, 40), (200, 20), (400, 10), (800, 5), (1600, 2)]]
    image = np.full((20, 20, 3), 100, np.uint8)  # 400 px: bpp = 8 * bytes / 400
    monkeypatch.setattr(codec, "compress", lambda m, img: bytes(m.bytes_))
    monkeypatch.setattr(
        codec, "decompress",
        lambda data, m: np.full((20, 20, 3), 100 + m.error, np.uint8))
    choice = targets.choose(models, image, target_bpp=10.0)  # <= 500 bytes
    assert choice.model is models[2] and choice.met and choice.bpp == 8.0
    assert choice.tried <= 3
    choice = targets.choose(models, image, target_bpp=1.0)  # nothing fits
    assert choice.model is models[0] and not choice.met
    # PSNR of an error e everywhere: 20 log10(255 / e).
    choice = targets.choose(models, image, target_psnr=30.0)  # needs e <= 8
    assert choice.model is models[3] and choice.met
    assert choice.psnr == pytest.approx(20 * np.log10(255 / 5))
    choice = targets.choose(models, image, target_psnr=60.0)
    assert choice.model is models[4] and not choice.met
    with pytest.raises(ValueError, match="exactly one"):
        targets.choose(models, image)


def test_family_orders_shipped_models_by_lambda(tiny_model_dir, tmp_path,
                                                monkeypatch):
    import json
    import shutil

    for name, lmbda in [("fam-b", 0.02), ("fam-a", 0.05), ("other", 0.01)]:
        shutil.copytree(tiny_model_dir, tmp_path / name)
        info_path = tmp_path / name / "assets" / "model_info.json"
        info = json.loads(info_path.read_text())
        info_path.write_text(json.dumps(dict(info, lmbda=lmbda)))
    monkeypatch.setenv("E2E_COMPRESS_MODELS", str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p in targets.family("fam-*")] == [
        "fam-b", "fam-a"]
    with pytest.raises(zoo.ModelNotFoundError, match="no shipped model matches"):
        targets.family("nothing-*")


def test_cli_compresses_to_a_target(tiny_model_dir, tmp_path, monkeypatch):
    import shutil

    from e2e_compress import image_io

    shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny-q1")
    src = tmp_path / "in.png"
    image_io.write_png(str(src), smooth_image(48, 64, seed=2))
    env = {"E2E_COMPRESS_MODELS": str(tmp_path / "models")}
    result = run_cli("compress", "--model=tiny-*", "--target_bpp=100", str(src),
                     str(tmp_path / "out.e2ec"), env=env)
    assert result.returncode == 0, result.stderr
    assert "model tiny-q1" in result.stdout and "met" in result.stdout
    result = run_cli("compress", "--model=tiny-*", "--target_bpp=1",
                     "--target_psnr=30", str(src), str(tmp_path / "x.e2ec"),
                     env=env)
    assert result.returncode == 1 and "not both" in result.stderr


def test_training_totals_add_up_the_warm_start_chain():
    base = {"steps": 1500, "cpu_hours": 0.5, "wall_hours": 0.25, "init_from": None}
    middle = {"steps": 14500, "cpu_hours": 3.5, "wall_hours": 2.5, "init_from": base}
    info = {"steps": 750, "cpu_hours": 0.25, "wall_hours": 0.125,
            "init_from": {"path": "/some/train_dir", **middle}}
    assert zoo.training_totals(info) == {
        "steps": 16750, "cpu_hours": 4.25, "wall_hours": 2.875, "generations": 3}
    assert zoo.training_totals({"steps": 10})["generations"] == 1


def test_distinct_cpu_hours_count_a_shared_ancestor_once():
    root = {"model_id": "a" * 16, "cpu_hours": 2.0, "init_from": None}
    unnamed = {"path": "/old/run", "steps": 500, "cpu_hours": 0.5, "init_from": root}
    left = {"model_id": "b" * 16, "cpu_hours": 1.0, "init_from": dict(unnamed)}
    right = {"model_id": "c" * 16, "cpu_hours": 0.25, "init_from": dict(unnamed)}
    # Summed per model: 3.5 + 2.75 = 6.25; the shared 2.5 h counted once: 3.75.
    assert sum(zoo.training_totals(i)["cpu_hours"] for i in (left, right)) == 6.25
    assert zoo.distinct_cpu_hours([left, right]) == 3.75
    # A model listed twice, or listed beside its own ancestor, adds nothing.
    assert zoo.distinct_cpu_hours([left, left, root]) == 3.5
    assert zoo.distinct_cpu_hours([]) == 0.0


def test_shipped_models_carry_the_lambda_their_names_promise():
    shipped = zoo.list_models()
    assert zoo.DEFAULT_MODEL in shipped
    for name, info in shipped.items():
        promised = zoo.lmbda_of_name(name)
        assert promised is not None, f"{name} is outside the naming scheme"
        assert (info["distortion"], info["lmbda"]) == pytest.approx(promised), name
    assert zoo.lmbda_of_name("bls2017-mse-q10") is None
    assert zoo.lmbda_of_name("bls2017-mse-q9") == ("mse", 0.36)
    assert zoo.lmbda_of_name("bls2017-msssim-q3") == ("ms-ssim", 8.73)
