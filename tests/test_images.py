"""Image decoding: every mode comes out uint8 RGB; bad files give an error naming the file."""

import numpy as np
import pytest
from PIL import Image

from vireid_jax.data import images


def test_modes_become_rgb(tmp_path):
  gray = (np.arange(12 * 6).reshape(12, 6) * 3).astype(np.uint8)
  Image.fromarray(gray, "L").save(tmp_path / "l.png")
  out = images.load_image(str(tmp_path / "l.png"))
  assert out.shape == (12, 6, 3) and out.dtype == np.uint8
  np.testing.assert_array_equal(out[..., 0], gray)
  np.testing.assert_array_equal(out[..., 2], gray)

  deep = (np.arange(12 * 6).reshape(12, 6) * 900).astype(np.uint16)   # up to 63,900
  Image.fromarray(deep).save(tmp_path / "i16.png")
  out16 = images.load_image(str(tmp_path / "i16.png"))
  assert out16.shape == (12, 6, 3) and out16.max() == 255 and out16.min() == 0
  # Scaled, not clipped: the ramp stays monotone.
  assert np.all(np.diff(out16[..., 0].reshape(-1).astype(int)) >= 0)

  rgba = np.zeros((4, 4, 4), np.uint8)
  rgba[..., 0] = 200
  rgba[..., 3] = 255
  rgba[0, 0, 3] = 0          # transparent pixel -> black background
  Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
  outa = images.load_image(str(tmp_path / "a.png"))
  assert tuple(outa[1, 1]) == (200, 0, 0) and tuple(outa[0, 0]) == (0, 0, 0)


def test_resize_to_height_width(tmp_path):
  Image.fromarray(np.zeros((50, 20, 3), np.uint8)).save(tmp_path / "x.jpg")
  assert images.load_image(str(tmp_path / "x.jpg"), (32, 16)).shape == (32, 16, 3)
  batch = images.load_images([str(tmp_path / "x.jpg")] * 3, (8, 4))
  assert batch.shape == (3, 8, 4, 3)


@pytest.mark.parametrize("content", [b"", b"not an image at all"])
def test_bad_files_name_the_path(tmp_path, content):
  p = tmp_path / "bad.jpg"
  p.write_bytes(content)
  with pytest.raises(images.BadImageError, match="bad.jpg"):
    images.load_image(str(p))


def test_truncated_jpeg_is_refused(tmp_path):
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(tmp_path / "t.jpg")
  data = (tmp_path / "t.jpg").read_bytes()
  (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
  with pytest.raises(images.BadImageError, match="t.jpg"):
    images.load_image(str(tmp_path / "t.jpg"))


def test_normalize_uses_imagenet_statistics():
  x = np.full((1, 1, 1, 3), 255, np.uint8)
  expected = (1.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
  np.testing.assert_allclose(images.normalize(x)[0, 0, 0], expected, rtol=1e-5)
