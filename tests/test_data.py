import gzip
import math
import os
import struct
from pathlib import Path

import pytest
import torch

from gan_tutorial import data

SHARED = os.environ.get("GAN_TUTORIAL_DATA")
has_mnist = SHARED is not None and (Path(SHARED) / "mnist").is_dir()


def test_mixture_sample_shapes_and_moments():
    g = torch.Generator().manual_seed(0)
    x = data.gaussian_1d(4.0, 0.5).sample(20000, generator=g)
    assert x.shape == (20000, 1)
    assert abs(x.mean().item() - 4.0) < 0.02 and abs(x.std().item() - 0.5) < 0.02


def test_mixture_pdf_integrates_to_one():
    m = data.mixture_1d((-2.0, 2.0), 0.5, weights=(0.3, 0.7))
    xs = torch.linspace(-8, 8, 20001)
    integral = torch.trapezoid(m.pdf(xs), xs)
    assert abs(integral.item() - 1.0) < 1e-4
    # analytic density at a centre: 0.7 N(0; 0, 0.5) + 0.3 N(4; 0, 0.5)
    expected = 0.7 / (0.5 * math.sqrt(2 * math.pi)) + 0.3 / (0.5 * math.sqrt(2 * math.pi)) * math.exp(-0.5 * 64)
    assert math.isclose(m.pdf(torch.tensor([2.0])).item(), expected, rel_tol=1e-5)


def test_ring_and_grid_layout():
    ring, grid = data.ring_2d(), data.grid_2d()
    assert ring.num_modes == 8 and grid.num_modes == 25
    assert torch.allclose(ring.means.norm(dim=1), torch.full((8,), 2.0), atol=1e-6)
    assert grid.means.min() == -4 and grid.means.max() == 4


def test_mixture_bad_weights():
    with pytest.raises(ValueError, match="weights"):
        data.Mixture([[0.0], [1.0]], 1.0, weights=(1.0, -1.0))


def _write_idx(folder: Path, prefix: str, n: int, corrupt=False):
    folder.mkdir(parents=True, exist_ok=True)
    imgs = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
    labs = torch.arange(n, dtype=torch.uint8) % 10
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28) + imgs.numpy().tobytes()[: -1 if corrupt else None])
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + labs.numpy().tobytes())
    return imgs, labs


def test_idx_reader_roundtrip(tmp_path):
    imgs, labs = _write_idx(tmp_path / "mnist", "t10k", 12)
    d = data.load_mnist(tmp_path, verbose=False)
    assert d.images.shape == (12, 1, 28, 28) and d.labels.tolist() == labs.long().tolist()
    assert torch.allclose(d.images[:, 0], imgs.float() / 127.5 - 1)
    assert d.images.min() >= -1 and d.images.max() <= 1


def test_train_split_preferred_when_present(tmp_path):
    _write_idx(tmp_path / "mnist", "t10k", 5)
    _write_idx(tmp_path / "mnist", "train", 7)
    assert len(data.load_mnist(tmp_path, verbose=False)) == 7
    assert len(data.load_mnist(tmp_path, split="test", verbose=False)) == 5


def test_truncated_idx_is_reported(tmp_path):
    _write_idx(tmp_path / "mnist", "t10k", 4, corrupt=True)
    with pytest.raises(ValueError, match="truncated"):
        data.load_mnist(tmp_path, verbose=False)


def test_missing_mnist_says_how_to_fix(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="GAN_TUTORIAL_DATA"):
        data.load_mnist(tmp_path / "nothing_here")


def test_standin_is_announced(tmp_path, capsys):
    with pytest.warns(UserWarning, match="STAND-IN"):
        d = data.load_mnist(tmp_path, allow_standin=True, limit=50)
    assert "NOT MNIST" in d.source and d.images.shape == (50, 1, 28, 28)
    assert "STAND-IN" in capsys.readouterr().out


def test_bad_split_and_size(tmp_path):
    _write_idx(tmp_path / "mnist", "t10k", 3)
    with pytest.raises(ValueError, match="split"):
        data.load_mnist(tmp_path, split="valid")
    assert data.load_mnist(tmp_path, image_size=32, verbose=False).images.shape == (3, 1, 32, 32)
    assert data.load_mnist(tmp_path, image_size=64, verbose=False).images.shape == (3, 1, 64, 64)


@pytest.mark.skipif(not has_mnist, reason="real MNIST idx files not available (set GAN_TUTORIAL_DATA)")
def test_real_mnist_test_split():
    d = data.load_mnist(verbose=False)
    assert d.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(d.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert d.images.min() == -1 and d.images.max() == 1
    rest, hold = d.split(2000, seed=0)
    assert len(rest) == 8000 and len(hold) == 2000


def test_tensor_batches_cover_each_epoch_once():
    x = torch.arange(10)
    b = data.TensorBatches(x, batch_size=5, generator=torch.Generator().manual_seed(0))
    seen = torch.cat([b.next()[0], b.next()[0]])
    assert sorted(seen.tolist()) == list(range(10)) and b.epoch == 0
    b.next()
    assert b.epoch == 1
    with pytest.raises(ValueError, match="larger than the dataset"):
        data.TensorBatches(x, batch_size=11, generator=torch.Generator())
