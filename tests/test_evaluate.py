"""Metrics, BD-rate and the evaluation loop, against references worked out
independently."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from e2e_compress import baselines, bdrate, evaluate, metrics, reference
from tests.conftest import smooth_image, write_images


def test_psnr_worked_by_hand():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 16  # MSE = 256 / 48
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 * 48 / 256))
    assert metrics.psnr(a, a) == math.inf
    # Y' of BT.601: a pure red error of 10 is a luma error of 2.99.
    c = a.copy()
    c[..., 0] = 10
    assert metrics.psnr_y(a, c) == pytest.approx(10 * math.log10(255 ** 2 / 2.99 ** 2))


@pytest.mark.parametrize("height,width,noise", [
    (176, 192, 20), (163, 201, 20), (170, 161, 120)])
def test_ms_ssim_agrees_with_tf_and_refuses_small_images(height, width, noise):
    # Odd sides exercise the symmetric padding before each 2x2 pooling; heavy
    # noise drives contrast terms negative, which both clip to 0.
    a = smooth_image(height, width, seed=1)
    rng = np.random.default_rng(0)
    b = np.clip(a.astype(int) + rng.integers(-noise, noise + 1, a.shape),
                0, 255).astype(np.uint8)
    expected = float(tf.image.ssim_multiscale(a, b, 255))
    assert metrics.ms_ssim(a, b) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    expected_y = float(tf.image.ssim_multiscale(
        metrics.luma(a)[..., None].astype(np.float32),
        metrics.luma(b)[..., None].astype(np.float32), 255))
    assert metrics.ms_ssim_y(a, b) == pytest.approx(expected_y, rel=1e-5,
                                                    abs=1e-6)
    assert metrics.ms_ssim(a, a) == pytest.approx(1.0)
    assert metrics.ms_ssim_db(0.99) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="161"):
        metrics.ms_ssim(a[:100], b[:100])


def test_bd_rate_of_a_curve_scaled_by_a_constant_factor():
    # The same PSNR at 0.9x the rate everywhere is a BD-rate of exactly -10 %.
    rates = np.array([0.1, 0.25, 0.5, 1.0, 2.0])
    psnr = np.array([26.0, 29.0, 32.0, 35.0, 38.5])
    assert bdrate.bd_rate(rates, psnr, 0.9 * rates, psnr) == pytest.approx(-10.0)
    assert bdrate.bd_rate(rates, psnr, 1.25 * rates, psnr) == pytest.approx(25.0)
    # Only the overlapping quality range counts. With PSNR linear in log-rate
    # (which PCHIP reproduces exactly) a partial curve gives the same result.
    linear = 30 + 4 * np.log(rates)
    assert bdrate.bd_rate(rates, linear, 0.9 * rates[1:4], linear[1:4]) == \
        pytest.approx(-10.0)
    assert math.isnan(bdrate.bd_rate(rates, psnr, rates, psnr + 20))


def test_bd_rate_of_a_linear_log_rate_shift_worked_by_hand():
    # ref: log R = (q - 30) / 5; test: log R = (q - 30) / 5 + (q - 30) / 50.
    # Over q in [25, 35] the mean extra log-rate is 0, so BD-rate is 0;
    # over [30, 35] it is mean((q-30)/50) = 0.05 -> exp(0.05) - 1.
    q = np.linspace(25, 35, 11)
    ref = np.exp((q - 30) / 5)
    test = np.exp((q - 30) / 5 + (q - 30) / 50)
    assert bdrate.bd_rate(ref, q, test, q) == pytest.approx(0.0, abs=1e-9)
    upper = q >= 30
    assert bdrate.bd_rate(ref[upper], q[upper], test[upper], q[upper]) == \
        pytest.approx((math.exp(0.05) - 1) * 100, rel=1e-6)


def test_cubic_fit_bd_rate_is_exact_on_a_cubic_and_near_pchip_elsewhere():
    # A log-rate that is itself a cubic in quality is fitted exactly, so the
    # 2001 method gives the exact answer of the linear-shift case above.
    q = np.linspace(25, 35, 11)
    ref = np.exp((q - 30) / 5 + ((q - 30) / 10) ** 3)
    test = ref * np.exp((q - 30) / 50)
    upper = q >= 30
    assert bdrate.bd_rate(ref[upper], q[upper], test[upper], q[upper],
                          method="cubic") == pytest.approx(
        (math.exp(0.05) - 1) * 100, rel=1e-6)
    # A kink (rate doubling per 3 dB, then per 1 dB) is not a cubic. With the
    # two curves sampled at different qualities, the fit and PCHIP disagree
    # by tenths of a point about a 10 % cut: the spread seen on real curves.
    def kinked(q):
        return np.where(q < 32, 2 ** ((q - 32) / 3), 2 ** (q - 32))
    q = np.arange(26.0, 38.0, 1.0)
    t = np.arange(26.5, 37.0, 1.5)
    rates = kinked(q)
    pchip = bdrate.bd_rate(rates, q, 0.9 * kinked(t), t)
    cubic = bdrate.bd_rate(rates, q, 0.9 * kinked(t), t, method="cubic")
    assert -11 < pchip < -9 and -11 < cubic < -9 and abs(pchip - cubic) > 0.1
    assert bdrate.bd_rate(rates, q, 0.9 * rates, q, method="cubic") == \
        pytest.approx(-10.0)
    with pytest.raises(ValueError, match="at least 4 distinct points, got 3"):
        bdrate.bd_rate(rates[:3], q[:3], rates[:3], q[:3], method="cubic")
    with pytest.raises(ValueError, match="method must be one of"):
        bdrate.bd_rate(rates, q, rates, q, method="linear")


def test_rate_difference_of_one_point_worked_by_hand():
    # The curve doubles its rate every 3 dB: R(q) = 2 ** ((q - 33) / 3).
    q = np.array([30.0, 33.0, 36.0])
    rates = 2.0 ** ((q - 33) / 3)
    assert bdrate.rate_difference(rates, q, 0.9, 33.0) == pytest.approx(-10.0)
    # At 34.5 dB the curve needs 2 ** 0.5 bpp; 1.2 bpp is 15.15 % less.
    assert bdrate.rate_difference(rates, q, 1.2, 34.5) == pytest.approx(
        (1.2 / math.sqrt(2) - 1) * 100, rel=1e-6)
    assert math.isnan(bdrate.rate_difference(rates, q, 1.0, 37.0))


def test_reference_curve_is_complete():
    r = reference.BLS2017_KODAK["results"]
    assert len({len(v) for v in r.values()}) == 1 and len(r["bpp"]) == 8


def _photo_crop(size=128):
    from e2e_compress import image_io
    from tests.conftest import SAMPLE

    return image_io.read_image(SAMPLE)[200:200 + size, 300:300 + size]


@pytest.mark.parametrize("name", sorted(baselines.BASELINES))
def test_every_baseline_round_trips_at_one_setting(name):
    b = baselines.BASELINES[name]
    image = _photo_crop()
    data = b.encode(image, b.settings[len(b.settings) // 2])
    decoded = b.decode(data)
    assert decoded.shape == image.shape
    assert metrics.psnr(image, decoded) > 20


def test_jpeg2000_uses_the_colour_transform():
    # With mct=1 the same bytes buy clearly more quality than without.
    from PIL import Image
    import io

    image = _photo_crop()  # a photo: its colour channels are correlated
    with_mct = baselines.encode_jpeg2000(image, 0.5)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG2000", quality_mode="rates",
                                quality_layers=[48], irreversible=True, mct=0,
                                no_jp2=True)
    without = buf.getvalue()
    assert len(with_mct) <= len(without) * 1.05
    assert metrics.psnr(image, baselines.decode(with_mct)) > metrics.psnr(
        image, baselines.decode(without))


def test_evaluate_reports_one_mean_per_setting_and_skips_bad_images(
        tmp_path, tiny_model_dir):
    paths = write_images(str(tmp_path / "img"), count=2, height=40, width=48)
    bad = tmp_path / "img" / "zz_bad.png"
    bad.write_text("not an image")
    files = evaluate.list_image_files(str(tmp_path / "img"))
    for spec in ("jpeg", tiny_model_dir):
        result = evaluate.evaluate_codec(evaluate.make_codec(spec), files,
                                         progress=False)
        n = len(result["settings"])
        assert all(len(v) == n for v in result["results"].values())
        assert result["images"] == ["img0.png", "img1.png"]
        assert [f["image"] for f in result["failures"]] == [str(bad)]
        # The mean is over the images that worked.
        per = result["per_image"]
        assert result["results"]["bpp"][0] == pytest.approx(
            np.mean([per[i]["bpp"][0] for i in result["images"]]))
        path = evaluate.write_result(result, str(tmp_path / "out"))
        assert json.load(open(path))["name"] == result["name"]
    assert len(paths) == 2


def test_a_curve_of_more_models_than_the_load_cache_loads_each_once(monkeypatch):
    from e2e_compress import codec

    loads = []
    monkeypatch.setattr(codec, "load_model", lambda s: loads.append(s) or s)
    settings = tuple(f"model-{i}" for i in range(12))
    learned = evaluate.LearnedCodec("curve", "", settings)
    for _ in range(3):  # three images, each coded at every setting in turn
        assert [learned._model(s) for s in settings] == list(settings)
    assert loads == list(settings)


def test_same_size_jpeg_gets_at_least_our_bytes_and_payload_is_measured(
        tmp_path, tiny_model_dir):
    from e2e_compress import container

    files = write_images(str(tmp_path / "img"), count=1, height=40, width=48)
    cmp = evaluate.compare_with_jpeg_at_same_size(tiny_model_dir, files,
                                                  progress=False)
    assert sorted(cmp["images"]) == ["img0.png"]
    for row in cmp["images"].values():
        assert row["jpeg"]["bpp"] >= row["ours"]["bpp"]
        assert row["ours"]["payload_bits"] == pytest.approx(
            row["ours"]["bpp"] * 40 * 48 - 8 * container.OVERHEAD_BYTES)
        assert row["ours"]["estimate_bits"] > 0
    coding = cmp["range_coding"]
    assert coding["excess_percent"] == pytest.approx(
        (coding["payload_bits"] / coding["estimate_bits"] - 1) * 100)


def test_a_model_record_carries_its_training_chain_and_measurements(
        tmp_path, tiny_model_dir, monkeypatch):
    import shutil

    from e2e_compress import records, zoo

    files = write_images(str(tmp_path / "img"), count=1, height=40, width=48)
    cmp = evaluate.compare_with_jpeg_at_same_size(tiny_model_dir, files,
                                                  progress=False)
    record = records.model_record(tiny_model_dir, cmp)
    assert record["model_id"] == cmp["model_id"]
    assert record["training"]["steps"] == record["total_steps"] == 2
    assert record["training"]["segments"][0]["conv_dtype"] == "float32"
    assert record["warm_start_chain"] == [] and record["generations"] == 1
    assert record["kodak"]["bpp"] == cmp["mean"]["ours"]["bpp"]
    assert record["kodak_jpeg_same_size"]["bpp"] >= record["kodak"]["bpp"]
    assert record["size_bytes"] == zoo.size_bytes(tiny_model_dir)
    with pytest.raises(ValueError, match="evaluate it again"):
        records.model_record(tiny_model_dir, dict(cmp, model_id="0" * 16))
    # write_records fills in only the models whose results match their weights.
    models = tmp_path / "models"
    shutil.copytree(tiny_model_dir, models / "bls2017-mse-q1")
    shutil.copytree(tiny_model_dir, models / "bls2017-mse-q2")
    results = tmp_path / "results"
    results.mkdir()
    (results / "bls2017-mse-q1_vs_jpeg.json").write_text(json.dumps(cmp))
    (results / "bls2017-mse-q2_vs_jpeg.json").write_text(
        json.dumps(dict(cmp, model_id="0" * 16)))
    monkeypatch.setenv("E2E_COMPRESS_MODELS", str(models))
    assert records.write_records(str(results)) == ["bls2017-mse-q1"]
    written = json.loads((models / "bls2017-mse-q1" / "record.json").read_text())
    assert written["name"] == "bls2017-mse-q1"
    assert not (models / "bls2017-mse-q2" / "record.json").exists()


def test_the_paper_curve_is_used_only_for_results_on_the_24_kodak_images():
    kodak = {"images": sorted(reference.KODAK_IMAGES)}
    assert reference.is_kodak([kodak, dict(kodak)])
    # One image fewer, one image more, other names, or no list at all.
    assert not reference.is_kodak([{"images": sorted(reference.KODAK_IMAGES)[1:]}])
    assert not reference.is_kodak(
        [kodak, {"images": sorted(reference.KODAK_IMAGES) + ["x.png"]}])
    assert not reference.is_kodak([{"images": ["img0.png", "img1.png"]}])
    assert not reference.is_kodak([{"name": "jpeg"}])
    assert not reference.is_kodak([])


def test_report_writes_figure_and_bd_table_against_the_paper(tmp_path):
    from e2e_compress import plot

    paper = reference.BLS2017_KODAK
    faster = {"name": "test", "description": "",
              "results": {k: list(v) for k, v in paper["results"].items()}}
    faster["results"]["bpp"] = [0.8 * b for b in paper["results"]["bpp"]]
    path = tmp_path / "test.json"
    path.write_text(json.dumps(faster))
    rows = plot.write_rd_outputs([str(path)], str(tmp_path), reference=paper)
    row = next(r for r in rows if r["codec"] == "test")
    assert row["psnr-rgb"] == pytest.approx(-20.0)
    assert row["ms-ssim-rgb-db"] == pytest.approx(-20.0)
    assert row["psnr-rgb-cubic"] == pytest.approx(-20.0)
    assert (tmp_path / "rd.png").stat().st_size > 10_000
    assert ("| test | BLS2017 (paper) | -20.0 % | -20.0 % | -20.0 % | -20.0 % |"
            in (tmp_path / "bd_rates.md").read_text())
    points = plot.point_table(faster, [paper])
    assert len(points) == len(paper["results"]["bpp"])
    for point in points:  # every point needs 20 % fewer bits than the paper's
        assert point["rate"]["BLS2017 (paper)"]["psnr-rgb"] == pytest.approx(-20.0)
    table = plot.markdown_point_table(points, ["BLS2017 (paper)"])
    assert table.count("-20.0 %") == 2 * len(points)
