"""Training: a short run, warm start, resume after SIGKILL, bad data."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from e2e_compress import configs, data, export, train
from tests.conftest import write_images


def _config(folder, steps, **kwargs):
    return configs.TrainConfig(train_glob=os.path.join(folder, "*.png"),
                               patch_size=configs.TINY_PATCH, batch_size=2,
                               steps=steps, checkpoint_every=1, **kwargs)


def _variables_size(model_dir):
    """Bytes of an exported model's variables file."""
    return os.path.getsize(os.path.join(model_dir, "variables",
                                        "variables.data-00000-of-00001"))


def _summary_tags(folder):
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    tags = set()
    for name in os.listdir(folder):
        for raw in tf.data.TFRecordDataset(os.path.join(folder, name)):
            event = event_pb2.Event.FromString(raw.numpy())
            tags.update(v.tag for v in event.summary.value)
    return tags


def test_two_step_run_trains_records_and_exports_its_last_checkpoint(tmp_path):
    write_images(str(tmp_path / "img"))
    config = _config(str(tmp_path / "img"), 2, image_every=1,
                     validation_patch_size=48)
    trained = tmp_path / "trained"
    model = train.train(configs.TINY_MODEL, config, str(tmp_path / "run"),
                        export_to=str(trained), verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 2
    record = train.read_record(str(tmp_path / "run"))
    assert record["steps"] == 2 and record["cpu_seconds"] > 0
    assert np.isfinite(record["last_metrics"]["loss"])
    logs = tmp_path / "run" / "logs"
    assert {"epoch_loss", "epoch_bpp", "epoch_psnr"} <= _summary_tags(logs / "train")
    assert {"crop/original", "crop/reconstruction", "crop/psnr"} <= _summary_tags(
        logs / "images")

    info = train.export_latest(str(tmp_path / "run"), str(tmp_path / "model"))
    assert info["steps"] == 2 and info["lmbda"] == configs.TINY_MODEL.lmbda
    assert info["quantization"] == "noise"
    assert info["model_id"] == export.fingerprint(export.inference_module(model))
    assert info["kernel_parameter"] == export.SPATIAL
    assert info["training_data"]["used"] > 0
    assert [(s["start_step"], s["end_step"]) for s in info["segments"]] == [(0, 2)]
    with pytest.raises(FileExistsError):
        train.export_latest(str(tmp_path / "run"), str(tmp_path / "model"))
    with pytest.raises(FileNotFoundError, match="not a training directory"):
        train.export_latest(str(tmp_path / "img"), str(tmp_path / "other"))

    # The same command again (nothing left to train) replaces its own
    # export; another run may not replace it, and fails before training.
    first = (trained / "saved_model.pb").stat().st_mtime_ns
    train.train(configs.TINY_MODEL, config, str(tmp_path / "run"),
                export_to=str(trained), verbose=0)
    assert (trained / "saved_model.pb").stat().st_mtime_ns != first
    with pytest.raises(FileExistsError, match="not exported by the run"):
        train.train(configs.TINY_MODEL, config, str(tmp_path / "run2"),
                    export_to=str(trained), verbose=0)
    assert (trained / "saved_model.pb").exists()
    assert not train.read_record(str(tmp_path / "run2")).get("steps")


def test_warm_start_copies_the_weights_of_an_exported_model(tiny_model_dir, tmp_path):
    import tensorflow as tf

    from e2e_compress.model import BLS2017Model
    from tests.conftest import smooth_image

    model = BLS2017Model(configs.ModelConfig(num_filters=8, lmbda=0.05))
    x = tf.constant(smooth_image(32, 48)[None], tf.float32)
    before = model.analysis_transform(x).numpy()
    export.restore_weights(model, tiny_model_dir)
    # The export holds spatial kernels; training gets them back as Fourier
    # coefficients, computing what the exported model computes.
    names = [n for n, _ in tf.train.list_variables(
        os.path.join(tiny_model_dir, "variables", "variables"))]
    assert not [n for n in names if "kernel_parameter/real" in n]
    loaded = tf.saved_model.load(tiny_model_dir)
    y = loaded.analyse_tile(x)
    assert not np.allclose(before, y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.analysis_transform(x), y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.synthesis_transform(tf.round(y)),
                               loaded.synthesise_tile(tf.round(y)),
                               rtol=1e-4, atol=1e-3)
    narrower = BLS2017Model(configs.ModelConfig(num_filters=4))
    with pytest.raises(ValueError, match="4-filter"):
        export.restore_weights(narrower, tiny_model_dir)


def test_float16_kernels_halve_the_export_and_decode_what_they_encode(
        tiny_model_dir, tmp_path):
    import tensorflow as tf
    import tensorflow_compression  # noqa: F401  (registers the range coding ops)

    from e2e_compress import layers
    from e2e_compress.model import BLS2017Model
    from tests.conftest import smooth_image

    model = BLS2017Model(configs.TINY_MODEL)
    export.restore_weights(model, tiny_model_dir)
    half = str(tmp_path / "half")
    info = export.export_model(model, half, {}, kernel_dtype="float16")
    assert info["kernel_dtype"] == "float16"
    assert info["model_id"] != export.read_model_info(tiny_model_dir)["model_id"]
    dtypes = tf.train.load_checkpoint(
        os.path.join(half, "variables", "variables")).get_variable_to_dtype_map()
    kernels = {n: d for n, d in dtypes.items() if "kernel_parameter" in n}
    assert len(kernels) == 6 and set(kernels.values()) == {tf.float16}

    assert _variables_size(half) < 0.75 * _variables_size(tiny_model_dir)

    # Same transforms to float16 rounding of the kernels; float32 arithmetic.
    full, loaded = tf.saved_model.load(tiny_model_dir), tf.saved_model.load(half)
    x = tf.constant(smooth_image(32, 48)[None], tf.float32)
    y = loaded.analyse_tile(x)
    assert y.dtype == tf.float32
    np.testing.assert_allclose(y, full.analyse_tile(x), rtol=1e-2, atol=1e-2)
    image = tf.constant(smooth_image(40, 56))
    decoded = loaded.decompress(*loaded.compress(image))
    assert decoded.shape == image.shape and decoded.dtype == tf.uint8

    # Warm-starting from it restores the float16 values exactly.
    again = BLS2017Model(configs.TINY_MODEL)
    export.restore_weights(again, half)
    np.testing.assert_allclose(again.analysis_transform(x), y, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="kernel_dtype"):
        layers.AnalysisTransform(8, kernel_dtype="bfloat16")
    with pytest.raises(ValueError, match="needs spatial kernels"):
        layers.SynthesisTransform(8, kernel_parameter="rdft", kernel_dtype="float16")


def _export_with_fourier_kernels(model, path):
    """Writes `model` as exports were made before spatial kernels (8cf6b3a).

    The SavedModel holds the training transforms' Fourier-domain ("rdft")
    kernels and codes at tfc's 12-bit range coder precision; its metadata has
    no `kernel_parameter`. No shipped model is in this format any more.
    """
    import tensorflow as tf
    from keras.src.saving.legacy.saved_model import utils

    from e2e_compress import rate

    module = export.CompressionModule(
        model.analysis_transform, model.synthesis_transform, model.prior,
        rate.LEGACY_RANGE_CODER_PRECISION)
    info_path = os.path.join(os.path.dirname(path), export.MODEL_INFO)
    with open(info_path, "w") as f:
        json.dump(dict(num_filters=model.config.num_filters,
                       lmbda=model.config.lmbda,
                       distortion=model.config.distortion,
                       format="bls2017"), f)
    module.model_info = tf.saved_model.Asset(info_path)
    with utils.keras_option_scope(save_traces=False):
        tf.saved_model.save(module, path,
                            signatures=export._signatures(module))


def _kernel_numbers(model_dir):
    """Numbers held by the transforms' kernel variables of an exported model."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(model_dir, "variables",
                                                   "variables"))
    return sum(int(np.prod(shape)) for name, shape
               in reader.get_variable_to_shape_map().items()
               if "kernel_parameter" in name)


def test_a_model_exported_with_fourier_kernels_warm_starts_and_re_exports(tmp_path):
    """Models exported before spatial kernels load, warm-start, re-export."""
    import tensorflow as tf

    from e2e_compress.model import BLS2017Model
    from tests.conftest import smooth_image

    original = BLS2017Model(configs.TINY_MODEL)  # built in its constructor
    legacy = str(tmp_path / "legacy")
    _export_with_fourier_kernels(original, legacy)
    assert "kernel_parameter" not in export.read_model_info(legacy)

    model = BLS2017Model(configs.TINY_MODEL)
    export.restore_weights(model, legacy)
    slim = str(tmp_path / "slim")
    export.export_model(model, slim, {})
    x = tf.constant(smooth_image(64, 48)[None], tf.float32)
    old, new = tf.saved_model.load(legacy), tf.saved_model.load(slim)
    y = old.analyse_tile(x)
    assert float(tf.reduce_max(tf.abs(y))) > 0.1
    np.testing.assert_allclose(new.analyse_tile(x), y, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(new.synthesise_tile(tf.round(y)),
                               old.synthesise_tile(tf.round(y)), rtol=1e-4, atol=1e-2)

    # Spatial kernels hold a sixth fewer numbers than Fourier ones.
    assert 0 < _kernel_numbers(slim) < 0.86 * _kernel_numbers(legacy)


def test_a_wider_model_warm_started_from_a_narrow_one_computes_the_same(
        tiny_model_dir):
    import tensorflow as tf

    from e2e_compress.model import BLS2017Model
    from tests.conftest import smooth_image

    narrow = BLS2017Model(configs.ModelConfig(num_filters=8))
    export.restore_weights(narrow, tiny_model_dir)
    wide = BLS2017Model(configs.ModelConfig(num_filters=16))
    export.restore_weights(wide, tiny_model_dir)
    x = tf.constant(smooth_image(64, 48)[None], tf.float32)
    y_narrow, y_wide = narrow.analysis_transform(x), wide.analysis_transform(x)
    assert y_wide.shape[-1] == 16
    np.testing.assert_allclose(y_wide[..., :8], y_narrow, rtol=1e-4, atol=1e-3)
    # New latent channels start small and do not reach the old outputs.
    assert np.abs(y_wide[..., 8:]).mean() < 0.5 * np.abs(y_narrow).mean()
    y_hat = tf.round(y_wide)
    np.testing.assert_allclose(wide.synthesis_transform(y_hat),
                               narrow.synthesis_transform(y_hat[..., :8]),
                               rtol=1e-4, atol=1e-2)
    # Their priors are the most peaked old one, narrowed: a zero costs less
    # than in any old channel (this barely trained prior is still broad).
    p_zero = wide.prior.prob(tf.zeros([16])).numpy()
    assert p_zero[8:].min() > min(0.9, 5 * p_zero[:8].max())
    _, bpp_narrow, mse_narrow, _ = narrow(x, training=False)
    _, bpp_wide, mse_wide, _ = wide(x, training=False)
    np.testing.assert_allclose(mse_wide, mse_narrow, rtol=1e-4)
    assert bpp_wide >= bpp_narrow
    # The new channels still learn: their outgoing weights get gradients.
    with tf.GradientTape() as tape:
        loss, _, _, _ = wide(x, training=True)
    kernel = wide.synthesis_transform.layers[0].kernel_parameter.real
    grad = tape.gradient(loss, kernel).numpy()
    assert np.abs(grad[8:, :8]).max() > 0
    assert not np.any(kernel.numpy()[8:, :8])


def test_rescaled_latents_keep_the_function_and_cost_fewer_bits(
        tiny_model_dir, tmp_path):
    import tensorflow as tf

    from e2e_compress import rescale
    from e2e_compress.model import BLS2017Model
    from tests.conftest import smooth_image

    model = BLS2017Model(configs.TINY_MODEL)
    export.restore_weights(model, tiny_model_dir)
    x = tf.constant(smooth_image(64, 48)[None], tf.float32)
    y = model.analysis_transform(x).numpy()
    x_hat = model.synthesis_transform(y).numpy()
    t = tf.linspace(-4.0, 4.0, 17)[:, None] * tf.ones([1, 8])
    cdf = model.prior.base.cdf(t).numpy()
    _, bpp, mse, _ = model(x, training=False)

    rescale.rescale_latents(model, 0.5)
    y_half = model.analysis_transform(x).numpy()
    np.testing.assert_allclose(y_half, 0.5 * y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.synthesis_transform(y_half), x_hat,
                               rtol=1e-4, atol=1e-3)
    # The prior is the density of the scaled latents: P(0.5 y <= 0.5 t).
    np.testing.assert_allclose(model.prior.base.cdf(0.5 * t), cdf,
                               rtol=1e-4, atol=1e-6)
    _, bpp_half, mse_half, _ = model(x, training=False)
    assert bpp_half < bpp and mse_half > mse

    rescale.rescale_latents(model, 2.0)  # and back
    np.testing.assert_allclose(model.analysis_transform(x), y, rtol=1e-4, atol=1e-5)
    for bad in (0, -1.0, float("nan"), float("inf"), "0.5"):
        with pytest.raises(ValueError, match="scale must be"):
            rescale.rescale_latents(model, bad)

    # Training applies it to the warm start and records it.
    write_images(str(tmp_path / "img"))
    config = _config(str(tmp_path / "img"), 1, init_from=tiny_model_dir,
                     init_latent_scale=0.5)
    trained = train.train(configs.TINY_MODEL, config, str(tmp_path / "run"),
                          verbose=0)
    record = train.read_record(str(tmp_path / "run"))
    assert record["init_from"]["latent_scale"] == 0.5
    # One small step at 1e-4 leaves the latents near half their old size.
    y_trained = trained.analysis_transform(x).numpy()
    assert abs(np.abs(y_trained).mean() / np.abs(y).mean() - 0.5) < 0.05
    with pytest.raises(ValueError, match="needs init_from"):
        _config(str(tmp_path / "img"), 1, init_latent_scale=0.5)
    with pytest.raises(ValueError, match="init_latent_scale must be"):
        _config(str(tmp_path / "img"), 1, init_from=tiny_model_dir,
                init_latent_scale=0.0)


def test_mixed_quantization_reconstructs_from_rounded_latents_in_training(
        tiny_model_dir):
    import dataclasses

    import tensorflow as tf

    from e2e_compress.model import BLS2017Model
    from tests.conftest import smooth_image

    x = tf.constant(smooth_image(32, 48)[None], tf.float32)
    models = {}
    for quantization in ("noise", "mixed"):
        model = BLS2017Model(dataclasses.replace(configs.TINY_MODEL,
                                                 quantization=quantization))
        export.restore_weights(model, tiny_model_dir)
        models[quantization] = model
    _, _, mse_rounded, _ = models["mixed"](x, training=False)
    # Mixed: the distortion in training is the rounded one, every time...
    for _ in range(2):
        _, _, mse, _ = models["mixed"](x, training=True)
        np.testing.assert_allclose(mse, mse_rounded, rtol=1e-5)
    # ...where noise gives another distortion at each call.
    noisy = [float(models["noise"](x, training=True)[2]) for _ in range(2)]
    assert noisy[0] != noisy[1]
    # The rate still sees noise, and rounding passes the gradient through.
    bpp = [float(models["mixed"](x, training=True)[1]) for _ in range(2)]
    assert bpp[0] != bpp[1]
    model = models["mixed"]
    with tf.GradientTape() as tape:
        _, _, mse, _ = model(x, training=True)
    kernels = [v for v in model.analysis_transform.trainable_variables
               if "kernel" in v.name]
    grads = tape.gradient(mse, kernels)
    assert len(kernels) == 6
    assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in grads)
    with pytest.raises(ValueError, match="quantization must be"):
        configs.ModelConfig(quantization="round")


def test_small_and_unreadable_images_are_skipped_and_counted(tmp_path):
    folder = str(tmp_path / "img")
    write_images(folder, count=2)
    write_images(str(tmp_path / "small"), count=1, height=20, width=20)
    os.replace(tmp_path / "small" / "img0.png", tmp_path / "img" / "small.png")
    (tmp_path / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    paths, counts = data.list_images(os.path.join(folder, "*.png"), 32)
    assert counts == dict(matched=4, unreadable=1, too_small=1, used=2)
    assert all("img" in os.path.basename(p) for p in paths)
    with pytest.raises(data.NoImagesError, match="no files match"):
        data.list_images(os.path.join(folder, "*.jpg"), 32)
    assert data.expand_braces("a_{x,y}_{1,2}.png") == [
        "a_x_1.png", "a_x_2.png", "a_y_1.png", "a_y_2.png"]


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    write_images(str(tmp_path / "img"))
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "e2e_compress", "train",
            f"--train_glob={tmp_path}/img/*.png", f"--train_dir={run_dir}",
            "--num_filters=8", "--patch_size=32", "--batch_size=2",
            "--checkpoint_every=1", "--validate_every=1000"]
    # A constant learning rate first; resumed below with a decay (the
    # optimizer must checkpoint the same variables either way).
    proc = subprocess.Popen(args + ["--steps=100000", "--lr_decay_at=1.0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record_path = run_dir / "record.json"
    deadline = time.time() + 240
    while time.time() < deadline:
        if record_path.exists() and json.loads(record_path.read_text())["steps"] >= 3:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = json.loads(record_path.read_text())
    killed_at = killed["steps"]
    assert killed_at >= 3
    # A killed segment ends where it got to, not where it was meant to.
    assert killed["segments"][0]["end_step"] == killed_at
    assert killed["segments"][0]["planned_end_step"] == 100000
    # As a record written before `planned_end_step` existed: the plan in
    # `end_step`. The resume must still end that segment where it resumes.
    del killed["segments"][0]["planned_end_step"]
    killed["segments"][0]["end_step"] = 100000
    record_path.write_text(json.dumps(killed))
    target = killed_at + 2
    # `~` in a flag's value reaches the program unexpanded (the shell
    # expands it only at the start of a word): the export must land in HOME.
    result = subprocess.run(args + [f"--steps={target}", "--lr_decay_at=0.5",
                                    "--export_to=~/model"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(record_path.read_text())
    assert record["steps"] == target
    assert (tmp_path / "model" / "saved_model.pb").exists()
    assert record["segments"][-1]["start_step"] >= killed_at - 1
    # The killed segment ends where the resumed one starts; its plan is kept.
    assert record["segments"][0]["end_step"] == record["segments"][1]["start_step"]
    assert record["segments"][0]["planned_end_step"] == 100000
    assert record["segments"][-1]["end_step"] == target
    # Each segment records its own schedule.
    assert record["segments"][0]["decay_at_step"] == 100000
    assert record["segments"][-1]["decay_at_step"] == int(0.5 * target)
    # The prior's own optimizer cannot vanish on resume: a clear refusal.
    result = subprocess.run(args + [f"--steps={target + 1}", "--prior_lr_factor=1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "--prior_lr_factor=1 asks for one shared" in result.stderr
    assert json.loads(record_path.read_text())["steps"] == target


def test_bfloat16_convolutions_resume_a_float32_run_and_export_float32(tmp_path):
    import tensorflow as tf

    write_images(str(tmp_path / "img"))
    run = str(tmp_path / "run")
    train.train(configs.TINY_MODEL, _config(str(tmp_path / "img"), 1), run, verbose=0)
    model = train.train(configs.TINY_MODEL, _config(
        str(tmp_path / "img"), 2, conv_dtype="bfloat16"), run, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 2
    assert all(l.conv_dtype == "bfloat16" for l in model.analysis_transform.layers
               if hasattr(l, "conv_dtype"))
    record = train.read_record(run)
    assert [s["conv_dtype"] for s in record["segments"]] == ["float32", "bfloat16"]
    assert np.isfinite(record["last_metrics"]["loss"])
    info = train.export_latest(run, str(tmp_path / "model"))
    assert info["segments"][-1]["conv_dtype"] == "bfloat16"
    # The export computes in float32, with tfc's own convolutions.
    module = export.inference_module(model)
    assert all(getattr(l, "conv_dtype", "float32") == "float32"
               for l in module.analysis_transform.layers)
    x = tf.random.stateless_uniform((1, 32, 48, 3), seed=(1, 2), maxval=255.0)
    np.testing.assert_allclose(
        module.analysis_transform(x),
        model.analysis_transform(x),
        atol=0.02 * float(tf.reduce_max(tf.abs(module.analysis_transform(x)))))
    with pytest.raises(ValueError, match="conv_dtype must be one of"):
        _config(str(tmp_path / "img"), 1, conv_dtype="float16")


def test_steps_must_be_whole_epochs():
    # Keras runs whole epochs of checkpoint_every steps: steps=4800 at 250 a
    # checkpoint trained 5000 while the record said 4800.
    configs.TrainConfig(train_glob="*.png", steps=5000, checkpoint_every=250)
    with pytest.raises(ValueError, match="steps=4800 and checkpoint_every=250"):
        configs.TrainConfig(train_glob="*.png", steps=4800, checkpoint_every=250)


def test_ms_ssim_model_refuses_patches_too_small_for_five_scales(tmp_path):
    write_images(str(tmp_path / "img"))
    model_config = configs.ModelConfig(num_filters=8, lmbda=10.0,
                                       distortion="ms-ssim")
    config = _config(str(tmp_path / "img"), 1)  # 32 px patches
    with pytest.raises(ValueError, match="at least 161 px"):
        train.train(model_config, config, str(tmp_path / "run"), verbose=0)
    assert not os.path.exists(tmp_path / "run")  # refused before writing


def test_ms_ssim_model_trains_a_step(tmp_path):
    write_images(str(tmp_path / "img"), count=2, height=176, width=176)
    model_config = configs.ModelConfig(num_filters=8, lmbda=10.0,
                                       distortion="ms-ssim")
    config = configs.TrainConfig(train_glob=str(tmp_path / "img" / "*.png"),
                                 patch_size=176, validation_patch_size=176,
                                 batch_size=1, steps=1, checkpoint_every=1)
    train.train(model_config, config, str(tmp_path / "run"), verbose=0)
    metrics = train.read_record(str(tmp_path / "run"))["last_metrics"]
    assert 0 < metrics["ms_ssim"] <= 1 and np.isfinite(metrics["loss"])
