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
    d = data.load_mnist(tmp_path, verbose=False, verify=False)
    assert d.images.shape == (12, 1, 28, 28) and d.labels.tolist() == labs.long().tolist()
    assert torch.allclose(d.images[:, 0], imgs.float() / 127.5 - 1)
    assert d.images.min() >= -1 and d.images.max() <= 1


def test_test_split_is_the_default_and_train_is_explicit(tmp_path):
    _write_idx(tmp_path / "mnist", "t10k", 5)
    _write_idx(tmp_path / "mnist", "train", 7)
    assert len(data.load_mnist(tmp_path, verbose=False, verify=False)) == 5
    assert len(data.load_mnist(tmp_path, split="train", verbose=False, verify=False)) == 7


def test_train_split_is_never_replaced_by_the_test_split(tmp_path):
    _write_idx(tmp_path / "mnist", "t10k", 5)
    with pytest.raises(data.DataNotFoundError, match="(?s)train split.*train-images-idx3-ubyte.gz"):
        data.load_mnist(tmp_path, split="train", verify=False)


def test_files_that_are_not_mnist_fail_the_checksum_with_the_fix(tmp_path):
    _write_idx(tmp_path / "mnist", "t10k", 5)
    with pytest.raises(data.DataChecksumError, match="Fix: delete it and load again with download=True"):
        data.load_mnist(tmp_path)


def test_truncated_idx_is_reported(tmp_path):
    _write_idx(tmp_path / "mnist", "t10k", 4, corrupt=True)
    with pytest.raises(ValueError, match="truncated"):
        data.load_mnist(tmp_path, verbose=False, verify=False)
    with pytest.raises(data.DataChecksumError):
        data.load_mnist(tmp_path, verbose=False)


def test_missing_mnist_says_how_to_fix(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="GAN_TUTORIAL_DATA"):
        data.load_mnist(tmp_path / "nothing_here")


def test_standin_is_announced(tmp_path, capsys):
    with pytest.warns(UserWarning, match="STAND-IN"):
        d = data.load_mnist(tmp_path, allow_standin=True, limit=50)
    assert "NOT MNIST" in d.source and d.images.shape == (50, 1, 28, 28)
    assert "STAND-IN" in capsys.readouterr().out


@pytest.mark.parametrize("split", ["valid", "auto"])
def test_bad_split(tmp_path, split):
    _write_idx(tmp_path / "mnist", "t10k", 3)
    with pytest.raises(ValueError, match="split must be 'test'"):
        data.load_mnist(tmp_path, split=split)


def test_image_sizes(tmp_path):
    _write_idx(tmp_path / "mnist", "t10k", 3)
    assert data.load_mnist(tmp_path, image_size=32, verbose=False, verify=False).images.shape == (3, 1, 32, 32)
    assert data.load_mnist(tmp_path, image_size=64, verbose=False, verify=False).images.shape == (3, 1, 64, 64)


# --------------------------------------------------------------------------- downloads (torchvision faked: no network)
class _FakeMNIST:
    """Stands in for torchvision.datasets.MNIST(root, train, download=True): writes ``files`` into
    ``root/MNIST/raw`` (name -> bytes), then raises ``error`` if given (as a failed download does)."""

    files: dict = {}
    error: Exception | None = None

    def __init__(self, root, train=True, download=False):
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for name, payload in self.files.items():
            (raw / name).write_bytes(payload)
        if self.error is not None:
            raise self.error


@pytest.fixture
def fake_torchvision(monkeypatch):
    torchvision = pytest.importorskip("torchvision")

    def use(files, error=None):
        monkeypatch.setattr(torchvision.datasets, "MNIST", type("MNIST", (_FakeMNIST,), {"files": files, "error": error}))

    return use


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_corrupted_download_is_deleted_and_names_the_fix(tmp_path, fake_torchvision):
    fake_torchvision({"t10k-images-idx3-ubyte.gz": b"not the real file", "t10k-labels-idx1-ubyte.gz": b"nor this"})
    with pytest.raises(data.DataChecksumError, match="(?s)corrupted.*Fix: run again"):
        data.load_mnist(tmp_path, download=True, verbose=False)
    assert _leftovers(tmp_path) == [] and not (tmp_path / "MNIST").exists()


def test_failed_download_leaves_nothing_behind(tmp_path, fake_torchvision):
    fake_torchvision({"t10k-images-idx3-ubyte.gz": b"half a fi"}, error=RuntimeError("File not found or corrupted."))
    with pytest.raises(data.DataNotFoundError, match="(?s)Downloading MNIST failed.*GAN_TUTORIAL_DATA"):
        data.load_mnist(tmp_path, download=True, verbose=False)
    assert _leftovers(tmp_path) == []


def test_corrupted_download_keeps_the_good_files_already_there(tmp_path, fake_torchvision):
    raw = tmp_path / "MNIST" / "raw"
    _write_idx(raw, "train", 3)                   # files of the other split, already in place
    before = {p.name: p.read_bytes() for p in raw.iterdir()}
    fake_torchvision({"train-images-idx3-ubyte.gz": b"broken", "t10k-images-idx3-ubyte.gz": b"broken"})
    with pytest.raises(data.DataChecksumError):
        data.load_mnist(tmp_path, download=True, verbose=False)
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == before


# --------------------------------------------------------------------------- the real MNIST test split
needs_mnist = pytest.mark.skipif(not has_mnist, reason="real MNIST idx files not available (set GAN_TUTORIAL_DATA)")


@needs_mnist
def test_real_mnist_test_split(capsys):
    d = data.load_mnist()
    assert "test split" in d.source and "checksums verified" in capsys.readouterr().out
    assert d.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(d.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert d.images.min() == -1 and d.images.max() == 1
    rest, hold = d.split(2000, seed=0)
    assert len(rest) == 8000 and len(hold) == 2000


@needs_mnist
def test_published_checksums_are_the_ones_checked():
    for line in (Path(SHARED) / "mnist" / "MD5SUMS").read_text().split("\n"):
        if line.strip():
            md5, name = line.split()
            assert data.MNIST_MD5[name] == md5


@needs_mnist
@pytest.mark.parametrize("layout", ["unpacked", "torchvision"])
def test_other_layouts_give_the_same_verified_images(tmp_path, layout):
    reference = data.load_mnist(verbose=False)
    folder = tmp_path / ("mnist" if layout == "unpacked" else "MNIST/raw")
    folder.mkdir(parents=True)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        packed = (Path(SHARED) / "mnist" / f"{stem}.gz").read_bytes()
        if layout == "unpacked":
            (folder / stem).write_bytes(gzip.decompress(packed))
        else:
            (folder / f"{stem}.gz").write_bytes(packed)
    d = data.load_mnist(tmp_path, verbose=False)
    assert torch.equal(d.images, reference.images) and torch.equal(d.labels, reference.labels)


@needs_mnist
def test_damaged_unpacked_file_fails_the_checksum(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        raw = bytearray(gzip.decompress((Path(SHARED) / "mnist" / f"{stem}.gz").read_bytes()))
        if "images" in stem:
            raw[5000] ^= 0xFF                      # one pixel changed: same size, wrong content
        (folder / stem).write_bytes(bytes(raw))
    with pytest.raises(data.DataChecksumError, match="t10k-images-idx3-ubyte .*does not match"):
        data.load_mnist(tmp_path)


@needs_mnist
def test_good_download_is_moved_into_place(tmp_path, fake_torchvision, capsys):
    files = {f"{stem}.gz": (Path(SHARED) / "mnist" / f"{stem}.gz").read_bytes()
             for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    fake_torchvision(files)
    d = data.load_mnist(tmp_path, download=True)
    out = capsys.readouterr().out
    assert "Downloading MNIST" in out and "checksums verified" in out and len(d) == 10000
    assert _leftovers(tmp_path) == sorted(f"MNIST/raw/{name}" for name in files)


def test_tensor_batches_cover_each_epoch_once():
    x = torch.arange(10)
    b = data.TensorBatches(x, batch_size=5, generator=torch.Generator().manual_seed(0))
    seen = torch.cat([b.next()[0], b.next()[0]])
    assert sorted(seen.tolist()) == list(range(10)) and b.epoch == 0
    b.next()
    assert b.epoch == 1
    with pytest.raises(ValueError, match="larger than the dataset"):
        data.TensorBatches(x, batch_size=11, generator=torch.Generator())
