"""Every kind of input image becomes uint8 RGB of the right size, or a clear
error."""

import numpy as np
import pytest
from PIL import Image

from e2e_compress import image_io
from tests.conftest import smooth_image


@pytest.fixture
def rgb():
    return smooth_image(20, 30)


def _save(tmp_path, name, im, **kwargs):
    path = tmp_path / name
    im.save(path, **kwargs)
    return str(path)


def test_rgb_png_is_read_exactly(tmp_path, rgb):
    out = image_io.read_image(_save(tmp_path, "a.png", Image.fromarray(rgb)))
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK"])
def test_other_colour_modes_become_rgb(tmp_path, rgb, mode):
    im = Image.fromarray(rgb).convert(mode)
    fmt = "a.jpg" if mode == "CMYK" else "a.png"
    out = image_io.read_image(_save(tmp_path, fmt, im))
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    if mode == "L":
        assert (out[..., 0] == out[..., 1]).all()


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_refused_unless_dropped(tmp_path, rgb, mode):
    path = _save(tmp_path, "a.png", Image.fromarray(rgb).convert(mode))
    with pytest.raises(image_io.ImageReadError, match="drop_alpha"):
        image_io.read_image(path)
    out = image_io.read_image(path, drop_alpha=True)
    assert out.shape == (20, 30, 3)


def test_sixteen_bit_png_is_scaled_with_a_warning(tmp_path):
    a = (np.arange(20 * 30).reshape(20, 30) * 100).astype(np.uint16)
    path = _save(tmp_path, "a.png", Image.fromarray(a))
    with pytest.warns(UserWarning, match="16-bit"):
        out = image_io.read_image(path)
    assert out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out[..., 0], np.round(a / 257).astype(np.uint8))


def test_exif_orientation_is_applied(tmp_path, rgb):
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = _save(tmp_path, "a.jpg", im, exif=exif, quality=95)
    out = image_io.read_image(path)
    assert out.shape == (30, 20, 3)


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (9, 1), (17, 31)])
def test_tiny_and_odd_sizes(tmp_path, size):
    h, w = size
    a = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = image_io.read_image(_save(tmp_path, "a.png", Image.fromarray(a)))
    np.testing.assert_array_equal(out, a)


def test_missing_empty_and_non_image_files(tmp_path):
    with pytest.raises(image_io.ImageReadError, match="no such file"):
        image_io.read_image(str(tmp_path / "none.png"))
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(image_io.ImageReadError, match="empty"):
        image_io.read_image(str(tmp_path / "empty.png"))
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(image_io.ImageReadError, match="cannot read"):
        image_io.read_image(str(tmp_path / "text.png"))
    with pytest.raises(image_io.ImageReadError, match="directory"):
        image_io.read_image(str(tmp_path))


def test_atomic_write_keeps_an_existing_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        image_io.atomic_write_bytes(str(path), b"new")
    assert path.read_bytes() == b"keep me"
    image_io.atomic_write_bytes(str(path), b"new", overwrite=True)
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
