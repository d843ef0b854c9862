"""The command line, as a user runs it (subprocesses)."""

import os

import numpy as np
from PIL import Image

from tests.conftest import SAMPLE, run_cli, smooth_image


def _one_line_error(result):
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_compress_then_decompress_a_file(tiny_model_dir, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(smooth_image(40, 56)).save(src)
    packed, out = tmp_path / "x.e2ec", tmp_path / "out.png"
    result = run_cli("compress", f"--model={tiny_model_dir}", str(src), str(packed))
    assert result.returncode == 0, result.stderr
    size = os.path.getsize(packed)
    assert f"{size} bytes" in result.stdout
    assert f"{8 * size / (40 * 56):.4f} bpp" in result.stdout
    result = run_cli("decompress", f"--model={tiny_model_dir}", str(packed),
                     str(out))
    assert result.returncode == 0, result.stderr
    decoded = np.asarray(Image.open(out))
    assert decoded.shape == (40, 56, 3)
    # The output exists now: a second run refuses to overwrite it.
    again = run_cli("decompress", f"--model={tiny_model_dir}", str(packed), str(out))
    assert "exists" in _one_line_error(again)


def test_default_model_verify_reports_jpeg_beside_ours(tmp_path):
    out = tmp_path / "kodim23.e2ec"
    result = run_cli("compress", "--verify", SAMPLE, str(out))
    assert result.returncode == 0, result.stderr
    assert "PSNR" in result.stdout and "JPEG" in result.stdout
    result = run_cli("info", str(out))
    assert result.returncode == 0, result.stderr
    assert '"width": 768' in result.stdout
    assert '"model": "bls2017-mse-q4"' in result.stdout
    result = run_cli("models")
    assert result.returncode == 0, result.stderr
    assert "bls2017-mse-q4" in result.stdout
    assert "CPU hours behind these" in result.stdout


def test_bad_inputs_give_one_line_errors(tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.e2ec"
    garbage.write_bytes(b"E2EC" + bytes(40))
    cases = [
        (("compress", str(tmp_path / "missing.png"), str(tmp_path / "o")), "no such"),
        (("compress", str(not_image), str(tmp_path / "o")), "cannot read"),
        (("compress", str(empty), str(tmp_path / "o")), "empty"),
        (("decompress", str(garbage), str(tmp_path / "o.png")), ""),
        (("train", f"--train_glob={tmp_path}/none/*.png",
          f"--train_dir={tmp_path}/run"), "no files match"),
        (("nonsense",), "expected a command"),
    ]
    for args, message in cases:
        line = _one_line_error(run_cli(*args))
        assert message in line, (args, line)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.png").exists()


def test_batch_mode_continues_past_a_bad_file_and_exits_nonzero(tiny_model_dir,
                                                                  tmp_path):
    for i in range(2):
        Image.fromarray(smooth_image(24, 40, seed=i)).save(tmp_path / f"ok{i}.png")
    (tmp_path / "bad.png").write_text("not an image")
    out = tmp_path / "out"
    result = run_cli("compress", f"--model={tiny_model_dir}", "--noprogress",
                     f"--output_dir={out}", str(tmp_path / "*.png"))
    assert result.returncode == 1
    assert "2 of 3 files done" in result.stdout
    assert "FAILED" in result.stdout and "bad.png" in result.stdout
    assert sorted(os.listdir(out)) == ["ok0.e2ec", "ok1.e2ec"]
    back = tmp_path / "back"
    result = run_cli("decompress", f"--model={tiny_model_dir}", "--noprogress",
                     f"--output_dir={back}", str(out / "ok0.e2ec"),
                     str(out / "ok1.e2ec"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(os.listdir(back)) == ["ok0.png", "ok1.png"]


def test_export_converts_an_exported_model_to_float16_kernels(tiny_model_dir,
                                                               tmp_path):
    import json

    half = tmp_path / "half"
    result = run_cli("export", f"--from_model={tiny_model_dir}",
                     f"--export_to={half}", "--kernel_dtype=float16")
    assert result.returncode == 0, result.stderr
    assert "float16 kernels" in result.stdout
    with open(os.path.join(tiny_model_dir, "assets", "model_info.json")) as f:
        old = json.load(f)
    with open(half / "assets" / "model_info.json") as f:
        new = json.load(f)
    assert new["kernel_dtype"] == "float16" and new["model_id"] != old["model_id"]
    assert new["converted_from"]["model_id"] == old["model_id"]
    assert new["converted_from"]["kernel_dtype"] == "float32"
    assert new["range_coder_precision"] == old["range_coder_precision"] == 16
    assert new["converted_from"]["range_coder_precision"] == 16
    for key in ("steps", "lmbda", "num_filters", "training_data", "segments"):
        assert new[key] == old[key], key
    src, packed = tmp_path / "in.png", tmp_path / "x.e2ec"
    Image.fromarray(smooth_image(40, 56)).save(src)
    result = run_cli("compress", f"--model={half}", str(src), str(packed))
    assert result.returncode == 0, result.stderr

    cases = [
        ((f"--from_model={tiny_model_dir}", f"--export_to={tiny_model_dir}"),
         "is the source"),
        ((f"--from_model={tiny_model_dir}", f"--export_to={half}"), "exists"),
        ((f"--from_model={tiny_model_dir}", f"--train_dir={tmp_path}",
          f"--export_to={tmp_path / 'other'}"), "one of --train_dir"),
        ((f"--from_model={tmp_path}", f"--export_to={tmp_path / 'other'}"),
         "not an e2e-compress SavedModel"),
    ]
    for args, message in cases:
        line = _one_line_error(run_cli("export", *args))
        assert message in line, (args, line)
    assert not (tmp_path / "other").exists()
    assert (half / "saved_model.pb").exists()
