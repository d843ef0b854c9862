"""Tiled coding of large images gives what whole-image coding gives."""

import numpy as np
import pytest

from tests.conftest import smooth_image
from e2e_compress import codec, container, metrics, tiling


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return codec.load_model(tiny_model_dir)


def _whole_latents(model, image):
    h, w = -(-image.shape[0] // 16), -(-image.shape[1] // 16)
    padded = np.pad(image, ((0, 16 * h - image.shape[0]),
                            (0, 16 * w - image.shape[1]), (0, 0)), mode="edge")
    return model.module.analyse_tile(padded.astype(np.float32)[None]).numpy()


def test_tiled_analysis_equals_whole_image_analysis(model, monkeypatch):
    image = smooth_image(150, 203, seed=4)
    whole = _whole_latents(model, image)
    tiled = tiling.analyse(model.module, image, tile_size=48)
    assert tiled.shape == whole.shape == (1, 10, 13, 8)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    # The halo matters: half of it leaves the tiles' borders visibly wrong.
    monkeypatch.setattr(tiling, "ANALYSIS_HALO", 16)
    short = tiling.analyse(model.module, image, tile_size=48)
    assert np.abs(short - whole).max() > 1e-2


def test_tiled_synthesis_equals_whole_image_synthesis(model, monkeypatch):
    rng = np.random.default_rng(0)
    latents = rng.integers(-3, 4, (1, 6, 9, 8)).astype(np.float32)
    whole = model.module.synthesise_tile(latents).numpy()[0, :90, :141]
    whole = np.clip(np.rint(whole), 0, 255).astype(np.uint8)
    tiled = tiling.synthesise(model.module, latents, 90, 141, tile_size=32)
    assert tiled.shape == (90, 141, 3)
    assert np.abs(tiled.astype(int) - whole).max() <= 1
    assert np.mean(tiled != whole) < 1e-3
    monkeypatch.setattr(tiling, "SYNTHESIS_HALO", 1)
    short = tiling.synthesise(model.module, latents, 90, 141, tile_size=32)
    assert np.abs(short.astype(int) - whole).max() > 1


def test_large_images_round_trip_through_tiles_at_no_cost(model, monkeypatch):
    image = smooth_image(120, 200, seed=5)
    whole_file = codec.compress(model, image)
    whole = codec.decompress(whole_file, model)
    monkeypatch.setattr(tiling, "TILE_SIZE", 48)
    assert tiling.needs_tiling(120, 200)
    tiled_file = codec.compress(model, image)
    tiled = codec.decompress(tiled_file, model)
    assert container.unpack(tiled_file).height == 120
    assert tiled.shape == image.shape
    # Same latents up to float rounding: the same bytes or within a few.
    assert abs(len(tiled_file) - len(whole_file)) <= 4
    assert metrics.psnr(image, tiled) == pytest.approx(
        metrics.psnr(image, whole), abs=0.01)
    # The size alone decides the path: decoding is repeatable.
    np.testing.assert_array_equal(codec.decompress(tiled_file, model), tiled)


def test_bad_tile_sizes_are_refused(model):
    with pytest.raises(ValueError, match="multiple of 16"):
        tiling.analyse(model.module, smooth_image(32, 32, seed=1), tile_size=40)
