"""Training under tf.distribute: two logical CPUs, and two workers on localhost."""

import json
import os
import socket
import subprocess
import sys

import pytest

from e2e_compress import distribute
from tests.conftest import write_images


def _train_args(tmp_path, run_dir, steps, *extra):
    return [sys.executable, "-m", "e2e_compress", "train",
            f"--train_glob={tmp_path}/img/*.png", f"--train_dir={run_dir}",
            "--num_filters=8", "--patch_size=32", "--batch_size=2",
            "--checkpoint_every=1", "--validate_every=1000", f"--steps={steps}",
            *extra]


def test_mirrored_on_two_logical_cpus_trains_and_exports(tmp_path):
    write_images(str(tmp_path / "img"))
    run_dir = tmp_path / "run"
    extra = ("--strategy=mirrored", "--logical_cpus=2",
             f"--export_to={tmp_path}/model")
    result = subprocess.run(_train_args(tmp_path, run_dir, 2, *extra),
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 replica(s), global batch 4" in result.stderr
    assert json.loads((run_dir / "record.json").read_text())["steps"] == 2
    assert (tmp_path / "model" / "saved_model.pb").exists()
    # The checkpoint holds mirrored variables under the same names, so the
    # resume path (tested with the default strategy) reads it as well.
    assert (run_dir / "checkpoints" / "ckpt-2.index").exists()


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_localhost_train_one_run(tmp_path):
    write_images(str(tmp_path / "img"))
    run_dir = tmp_path / "run"
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers},
             "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            _train_args(tmp_path, run_dir, 2, "--strategy=multi_worker"),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=400))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("a worker hung")
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]
    assert "2 replica(s), global batch 4" in outputs[0][1]
    # The chief wrote the run's files; the other worker's scratch is gone.
    assert json.loads((run_dir / "record.json").read_text())["steps"] == 2
    assert sorted(os.listdir(run_dir)) == ["checkpoints", "logs", "record.json"]


def test_strategy_errors_are_clear(monkeypatch):
    with pytest.raises(ValueError, match="unknown strategy"):
        distribute.make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="not a valid cluster config"):
        distribute.make_strategy("multi_worker")


def test_cpu_bfloat16_units_read_from_cpuinfo(tmp_path):
    def cpuinfo(text):
        path = tmp_path / "cpuinfo"
        path.write_text(text)
        return str(path)

    xeon = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16\n"
    epyc = "processor\t: 0\nflags\t\t: fpu avx avx2 fma\n"
    assert distribute.cpu_has_bfloat16_units(cpuinfo(xeon)) is True
    assert distribute.cpu_has_bfloat16_units(cpuinfo(epyc)) is False
    # A flag's name inside another's does not count.
    assert distribute.cpu_has_bfloat16_units(cpuinfo("flags : avx512_bf16x\n")) is False
    assert distribute.cpu_has_bfloat16_units(cpuinfo("model name : M2\n")) is None
    assert distribute.cpu_has_bfloat16_units(str(tmp_path / "missing")) is None
