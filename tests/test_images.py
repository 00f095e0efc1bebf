"""Colour image data (gan_tutorial.images): folders, CIFAR-10 and CelebA offline, uint8 storage, streamed
batches that resume exactly. Every image is made here with PIL; nothing is downloaded."""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_tutorial import data, images, models, recipes, train
from gan_tutorial.data import ByteBatches, DataChecksumError, DataNotFoundError, TensorBatches, from_uint8

MODES = ("RGB", "L", "RGBA", "P")


def make_folder(folder: Path, n: int = 24, size=(40, 50), modes=MODES, seed: int = 0, ext: str = ".png") -> Path:
    """``n`` random images of ``size`` (width, height), cycling through ``modes``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        rgb.convert(modes[i % len(modes)]).save(folder / f"img{i:03d}{ext}")
    return folder


def banded(size, inner=(0, 0, 255), outer=(255, 0, 0)) -> Image.Image:
    """An image whose centre square is ``inner`` and whose two bands beyond it are ``outer``."""
    w, h = size
    img = Image.new("RGB", size, outer)
    s = min(w, h)
    img.paste(Image.new("RGB", (s, s), inner), ((w - s) // 2, (h - s) // 2))
    return img


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "pics")


# --------------------------------------------------------------------------- folders
@pytest.mark.parametrize("size", [32, 64])
def test_folder_shapes_range_and_uint8(folder, size):
    d = images.load_image_folder(folder, size, verbose=False)
    assert d.images.shape == (24, 3, size, size) and d.images.dtype == torch.uint8
    assert d.labels is None and d.classes is None and len(d) == 24
    x = d.float().images
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1 and x.min() < -0.9 and x.max() > 0.9
    assert torch.equal(x, d.images.float() / 127.5 - 1)


def test_centre_crop_keeps_the_centre_square(tmp_path):
    tall, wide = tmp_path / "tall", tmp_path / "wide"
    tall.mkdir(), wide.mkdir()
    banded((40, 50)).save(tall / "a.png")              # 5 red rows above and below a blue 40 x 40 square
    banded((60, 40)).save(wide / "b.png")              # 10 red columns left and right
    for f in (tall, wide):
        for size in (40, 32, 64):
            x = images.load_image_folder(f, size, verbose=False).images[0]
            assert (x[0] == 0).all() and (x[1] == 0).all() and (x[2] == 255).all(), (f.name, size)


def test_grey_scale_uses_luma(tmp_path):
    f = tmp_path / "c"
    f.mkdir()
    Image.new("RGB", (40, 50), (200, 100, 50)).save(f / "a.png")
    Image.new("L", (40, 50), 77).save(f / "b.png")
    d = images.load_image_folder(f, 32, channels=1, verbose=False)
    assert d.images.shape == (2, 1, 32, 32)
    assert d.images[0].unique().tolist() == [124]     # 0.299 * 200 + 0.587 * 100 + 0.114 * 50 = 124.2
    assert d.images[1].unique().tolist() == [77]
    rgb = images.load_image_folder(f, 32, verbose=False).images
    assert rgb[0, :, 0, 0].tolist() == [200, 100, 50] and rgb[1, :, 0, 0].tolist() == [77, 77, 77]


def test_class_subfolders_give_labels(tmp_path):
    make_folder(tmp_path / "cls" / "dogs", n=3, seed=1)
    make_folder(tmp_path / "cls" / "cats", n=2, seed=2)
    (tmp_path / "cls" / "empty").mkdir()
    make_folder(tmp_path / "cls" / "cats" / "more", n=1, seed=3)    # nested files belong to their class
    d = images.load_image_folder(tmp_path / "cls", 32, verbose=False)
    assert d.classes == ["cats", "dogs"] and d.labels.tolist() == [0, 0, 0, 1, 1, 1]
    sub = d.subset(torch.tensor([4, 0]))
    assert sub.labels.tolist() == [1, 0] and sub.classes == d.classes


def test_conversions_and_sizes_are_announced_once(tmp_path, capsys):
    make_folder(tmp_path / "mixed", n=8)
    Image.new("RGBA", (30, 30), (10, 20, 30, 0)).save(tmp_path / "mixed" / "clear.png")   # fully transparent
    d = images.load_image_folder(tmp_path / "mixed", 32)
    out = capsys.readouterr().out
    assert out.count("Converted") == 1 and "Converted 7 of 9 images to RGB" in out
    assert "2 L" in out and "2 P" in out and "3 RGBA with transparency" in out and "laid on white" in out
    assert out.count("sizes differ") == 1 and "30x30 to 40x50" in out
    assert (d.images[0] == 255).all()                 # the transparent image became white
    make_folder(tmp_path / "plain", n=4, modes=("RGB",))
    images.load_image_folder(tmp_path / "plain", 32)
    out = capsys.readouterr().out
    assert "Converted" not in out and "sizes differ" not in out and "Loaded image folder" in out


def test_missing_and_empty_folders_name_the_fix(tmp_path):
    with pytest.raises(DataNotFoundError, match="There is no folder .*Fix: check the path"):
        images.load_image_folder(tmp_path / "nope")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(DataNotFoundError, match="holds no image files.*Fix: put images in it"):
        images.load_image_folder(tmp_path / "empty")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataNotFoundError, match="is a file, not a folder"):
        images.load_image_folder(tmp_path / "file.png")


def test_unreadable_files_are_skipped_and_counted(folder, tmp_path):
    (folder / "broken.png").write_bytes(b"\x89PNG but not really")
    (folder / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    (folder / "notes.txt").write_text("ignored: not an image name")
    with pytest.warns(UserWarning, match="Skipped 2 of 26 files that could not be read") as record:
        d = images.load_image_folder(folder, 32, verbose=False)
    assert len(d) == 24 and len(record) == 1
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"nothing")
    with pytest.raises(DataNotFoundError, match="None of the 1 image files .* could be read"):
        images.load_image_folder(bad)


def test_bad_arguments(folder):
    with pytest.raises(ValueError, match="channels must be 3"):
        images.load_image_folder(folder, 32, channels=2)
    with pytest.raises(ValueError, match="image_size must be"):
        images.load_image_folder(folder, 4)


# --------------------------------------------------------------------------- uint8 storage, float batches
def test_uint8_batches_equal_float_batches(folder):
    d = images.load_image_folder(folder, 32, verbose=False)
    as_bytes = ByteBatches(d.images, batch_size=5, generator=torch.Generator().manual_seed(3))
    as_floats = TensorBatches(d.float().images, batch_size=5, generator=torch.Generator().manual_seed(3))
    for _ in range(7):                                 # crosses two epochs
        a, b = as_bytes.next()[0], as_floats.next()[0]
        assert a.dtype == torch.float32 and torch.equal(a, b)
    assert as_bytes.tensors[0].dtype == torch.uint8
    assert d.images.element_size() * 4 == d.float().images.element_size()


def test_trainer_keeps_uint8_and_trains_dcgan_on_colour(folder):
    d = images.load_image_folder(folder, 32, verbose=False)
    net_G, net_D, _ = recipes.build("dcgan", channels=3, image_size=32, width=8)
    tr = train.Trainer(net_G, net_D, d, num_steps=3, batch_size=8, log_every=1, device="cpu", progress=False)
    assert isinstance(tr.batches, ByteBatches) and tr.batches.tensors[0].dtype == torch.uint8
    tr.fit()
    assert tr.step == 3 and all(np.isfinite(tr.history["loss_D"]))
    assert tr.sample(4).shape == (4, 3, 32, 32)


def test_conditional_model_needs_labels(folder):
    d = images.load_image_folder(folder, 32, verbose=False)
    net_G = models.DCGANGenerator(16, channels=3, image_size=32, width=8, num_classes=2)
    net_D = models.DCGANDiscriminator(channels=3, image_size=32, width=8, num_classes=2)
    with pytest.raises(ValueError, match="no labels.*subfolder per class"):
        train.Trainer(net_G, net_D, d, batch_size=8, device="cpu", progress=False)
    with pytest.raises(ValueError, match="no labels.*subfolder per class"):
        train.Trainer(net_G, net_D, _stream(folder), batch_size=8, device="cpu", progress=False)


# --------------------------------------------------------------------------- streamed from disk
def _stream(folder, workers=0):
    return images.load_image_folder(folder, 32, stream=True, num_workers=workers, verbose=False)


def test_stream_reads_the_same_pixels_in_a_seeded_order(tmp_path):
    folder = make_folder(tmp_path / "s", n=20)
    files = _stream(folder)
    assert isinstance(files, images.ImageFiles) and len(files) == 20
    b = images.StreamBatches(files, False, 6, "cpu", seed=5)
    order = b.sampler.order(0)
    first = b.next()[0]
    assert first.dtype == torch.float32
    memory = images.load_image_folder(folder, 32, verbose=False).float().images
    assert torch.equal(first, memory[torch.as_tensor(order[:6])])
    assert not np.array_equal(order, b.sampler.order(1))                          # a new order each epoch
    assert not np.array_equal(order, images.StreamBatches(files, False, 6, "cpu", seed=6).sampler.order(0))


@pytest.mark.parametrize("workers", [0, 1])
def test_stream_resume_reproduces_the_batch_order(tmp_path, workers):
    files = _stream(make_folder(tmp_path / "s", n=20), workers)     # 3 full batches of 6 per epoch
    straight = images.StreamBatches(files, False, 6, "cpu", seed=1)
    expected = [straight.next()[0] for _ in range(8)]                # epochs 0, 1 and 2
    assert straight.epoch == 2 and straight.pos == 12
    first = images.StreamBatches(files, False, 6, "cpu", seed=1)
    got = [first.next()[0] for _ in range(4)]
    state = first.state_dict()
    assert state == {"seed": 1, "epoch": 1, "pos": 6}
    resumed = images.StreamBatches(files, False, 6, "cpu", seed=99)   # the seed comes from the state
    resumed.load_state_dict(state)
    got += [resumed.next()[0] for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
    with pytest.raises(ValueError, match="held in memory"):
        resumed.load_state_dict({"perm": None, "pos": 0, "epoch": 0})


def test_streamed_training_resumes_exactly(tmp_path):
    files = _stream(make_folder(tmp_path / "s", n=10))

    def trainer(path):
        net_G, net_D, _ = recipes.build("dcgan", channels=3, image_size=32, width=8)
        return train.Trainer(net_G, net_D, files, num_steps=5, batch_size=4, checkpoint_path=str(path),
                             log_every=1, device="cpu", progress=False)

    torch.manual_seed(0)
    straight = trainer(tmp_path / "a.pt").fit()
    torch.manual_seed(0)
    trainer(tmp_path / "b.pt").fit(3)                                 # epoch 1 after 2 steps of 2 batches
    torch.manual_seed(0)
    resumed = trainer(tmp_path / "b.pt").load_checkpoint(tmp_path / "b.pt").fit()
    assert isinstance(straight.batches, images.StreamBatches) and straight.history["epoch"][-1] == 2
    for key, value in straight.net_G.state_dict().items():
        torch.testing.assert_close(resumed.net_G.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_user_dataloader_of_uint8_images_is_converted(folder):
    loader = torch.utils.data.DataLoader(_stream(folder), batch_size=8, shuffle=True, drop_last=True)
    net_G, net_D, _ = recipes.build("dcgan", channels=3, image_size=32, width=8)
    tr = train.Trainer(net_G, net_D, loader, num_steps=1, device="cpu", progress=False)
    x = tr.batches.next()[0]
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert tr.batches.state_dict() == {"epoch": 0}                    # documented: a user loader's order restarts


def test_unreadable_file_in_a_stream_names_it(folder):
    (folder / "zz_broken.png").write_bytes(b"not a png")
    files = _stream(folder)
    with pytest.raises(OSError, match="cannot read .*zz_broken.png.*Fix: delete or replace it"):
        files[len(files) - 1]


# --------------------------------------------------------------------------- CIFAR-10 (torchvision faked)
class _FakeCIFAR10:
    calls: list = []
    error: Exception | None = None
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root, train=True, download=False):
        type(self).calls.append((root, train, download))
        if self.error is not None:
            raise self.error
        rng = np.random.default_rng(0)
        self.data = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
        self.targets = [i % 10 for i in range(12)]


@pytest.fixture
def fake_cifar(monkeypatch):
    torchvision = pytest.importorskip("torchvision")

    def use(error=None):
        fake = type("CIFAR10", (_FakeCIFAR10,), {"calls": [], "error": error})
        monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake)
        return fake

    return use


def test_cifar10_offline_says_where_to_put_it(tmp_path, fake_cifar, monkeypatch):
    fake = fake_cifar()
    monkeypatch.setenv("GAN_TUTORIAL_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="(?s)CIFAR-10 was not found.*download=True.*cifar-10-batches-py"):
        images.load_cifar10()
    assert fake.calls == []                                           # nothing was fetched


def test_cifar10_failed_download_gives_the_manual_path(tmp_path, fake_cifar, capsys):
    fake = fake_cifar(error=OSError("[Errno -3] Temporary failure in name resolution"))
    with pytest.raises(DataNotFoundError, match="(?s)Downloading CIFAR-10 failed.*name resolution.*GAN_TUTORIAL_DATA"):
        images.load_cifar10(tmp_path, download=True)
    assert fake.calls == [(str(tmp_path), True, True)] and "Downloading CIFAR-10" in capsys.readouterr().out


def test_cifar10_from_disk(tmp_path, fake_cifar):
    fake = fake_cifar()
    (tmp_path / "cifar-10-batches-py").mkdir()
    d = images.load_cifar10(tmp_path, verbose=False)
    assert fake.calls == [(str(tmp_path), True, False)]
    assert d.images.shape == (12, 3, 32, 32) and d.images.dtype == torch.uint8
    assert d.labels.tolist() == [i % 10 for i in range(12)] and d.classes[3] == "cat"
    raw = torch.from_numpy(fake(str(tmp_path)).data)
    assert torch.equal(d.images, raw.permute(0, 3, 1, 2))
    grey = images.load_cifar10(tmp_path, split="test", image_size=64, channels=1, limit=5, verbose=False)
    assert grey.images.shape == (5, 1, 64, 64) and fake.calls[-1][1] is False


def test_cifar10_damaged_files_name_the_fix(tmp_path, fake_cifar):
    fake_cifar(error=RuntimeError("Dataset not found or corrupted. You can use download=True to download it"))
    (tmp_path / "cifar10" / "cifar-10-batches-py").mkdir(parents=True)
    with pytest.raises(DataChecksumError, match="incomplete or damaged.*Fix: delete it"):
        images.load_cifar10(tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        images.load_cifar10(tmp_path, split="valid")


# --------------------------------------------------------------------------- CelebA (torchvision faked)
def test_celeba_from_its_aligned_jpegs(tmp_path):
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(3):
        banded((178, 218)).save(folder / f"{i + 1:06d}.jpg", quality=95)
    d = images.load_celeba(tmp_path, image_size=32, verbose=False)
    assert d.images.shape == (3, 3, 32, 32) and d.labels is None and "CelebA" in d.source
    x = d.images.int()
    assert (x[:, 0] < 20).all() and (x[:, 2] > 235).all()             # the 20-row red bands were cropped away
    files = images.load_celeba(tmp_path, image_size=64, stream=True, verbose=False)
    assert len(files) == 3 and files[0][0].shape == (3, 64, 64)


def test_celeba_in_a_doubled_folder_is_found(tmp_path):
    make_folder(tmp_path / "img_align_celeba" / "img_align_celeba", n=2, modes=("RGB",), ext=".jpg")
    assert len(images.load_celeba(tmp_path, image_size=32, verbose=False)) == 2


def test_celeba_offline_and_failed_download_give_the_manual_path(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    calls = []

    class FakeCelebA:
        def __init__(self, root, split="train", target_type="attr", download=False):
            calls.append(download)
            raise RuntimeError("Too many users have viewed or downloaded this file recently. Please try again later.")

    monkeypatch.setattr(torchvision.datasets, "CelebA", FakeCelebA)
    manual = "(?s)img_align_celeba.zip.*celeba/img_align_celeba/.*GAN_TUTORIAL_DATA.*load_image_folder"
    with pytest.raises(DataNotFoundError, match="(?s)CelebA was not found.*" + manual[4:]):
        images.load_celeba(tmp_path)
    assert calls == []
    with pytest.raises(DataNotFoundError, match="(?s)Downloading CelebA failed.*Too many users.*" + manual[4:]):
        images.load_celeba(tmp_path, download=True, verbose=False)
    assert calls == [True]


def test_celeba_download_is_read_from_where_torchvision_puts_it(tmp_path, monkeypatch, capsys):
    torchvision = pytest.importorskip("torchvision")

    class FakeCelebA:
        def __init__(self, root, split="train", target_type="attr", download=False):
            make_folder(Path(root) / "celeba" / "img_align_celeba", n=4, size=(178, 218), modes=("RGB",), ext=".jpg")

    monkeypatch.setattr(torchvision.datasets, "CelebA", FakeCelebA)
    d = images.load_celeba(tmp_path, image_size=32, download=True)
    assert len(d) == 4 and "Downloading CelebA" in capsys.readouterr().out


def test_memory_per_image():
    """uint8 storage is 4x smaller: 3,072 bytes per 32 px colour image (CIFAR-10's 50,000: 154 MB, not 614 MB)."""
    x = torch.zeros(10, 3, 32, 32, dtype=torch.uint8)
    d = data.ImageData(x, None, "zeros")
    assert d.images.nbytes // 10 == 3072 and d.float().images.nbytes // 10 == 4 * 3072
    assert 50000 * 3072 / 1e6 == pytest.approx(153.6)
