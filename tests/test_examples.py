"""The standalone TF program and the notebooks run."""

import os
import subprocess
import sys

import numpy as np
import pytest

from e2e_compress import codec, image_io
from tests.conftest import smooth_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")


def test_tf_app_example_codes_a_folder_readable_by_the_cli(tiny_model_dir, tmp_path):
    images = {"a.png": smooth_image(40, 56, seed=1), "b.png": smooth_image(17, 9, seed=2)}
    os.makedirs(tmp_path / "in")
    for name, image in images.items():
        image_io.write_png(str(tmp_path / "in" / name), image)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    result = subprocess.run(
        [sys.executable, os.path.join(NOTEBOOKS, "tf_app_example.py"),
         tiny_model_dir, str(tmp_path / "in"), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=""))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("bpp") == 2
    model = codec.load_model(tiny_model_dir)
    for name, image in images.items():
        stem = name[:-4]
        with open(tmp_path / "out" / f"{stem}.e2ec", "rb") as f:
            ours = codec.decompress(f.read(), model)
        theirs = image_io.read_image(str(tmp_path / "out" / f"{stem}.png"))
        assert ours.shape == image.shape
        np.testing.assert_array_equal(ours, theirs)


def test_signatures_are_listed_by_saved_model_cli(tiny_model_dir):
    bin_dir = os.path.dirname(sys.executable)
    # TF's own tool prints the named signatures (it fails later, on the
    # concrete functions, for want of tfc's ops) ...
    result = subprocess.run(
        [os.path.join(bin_dir, "saved_model_cli"), "show", "--dir",
         tiny_model_dir, "--tag_set", "serve", "--signature_def", "compress"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "inputs['image']" in result.stdout
    assert "outputs['strings']" in result.stdout
    # ... and ours, the same tool with tfc imported, shows everything.
    result = subprocess.run(
        [sys.executable, "-c", "from e2e_compress.cli import saved_model_cli;"
         " saved_model_cli.main()", "show", "--all", "--dir", tiny_model_dir],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("signature_def['compress']", "signature_def['decompress']",
                 "outputs['image']", "Function Name: 'synthesise_tile'"):
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(
    n for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb")))
def test_notebook_runs(name):
    import nbclient
    import nbformat

    notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": NOTEBOOKS}})
    client.execute()  # raises CellExecutionError, naming the cell, on failure
    errors = [o for c in notebook.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
