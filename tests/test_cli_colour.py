"""Command line on colour data: train --dataset folder:PATH / cifar10 / celeba, colour sample grids, evaluate
(Frechet distance of features: a small random net stands in for Inception) and the refusals (fully connected
models on colour, sizes a model cannot build). Offline."""
import json
import socket
import sys
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from gan_tutorial import fid
from gan_tutorial.checkpoints import load as load_checkpoint, models_from_checkpoint
from gan_tutorial.cli import main
from gan_tutorial.images import load_image_folder
from gan_tutorial.models import generate

from test_fid import small_extractor
from test_images import make_folder


@pytest.fixture(scope="module")
def pics(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("colour") / "pics", n=24)


def _train(out, pics, *extra, model="dcgan", steps="2"):
    return main(["train", "--model", model, "--dataset", f"folder:{pics}", "--image-size", "32", "--steps", steps,
                 "--batch-size", "8", "--log-every", "1", "--out", str(out), "--device", "cpu", *extra])


def _fails(argv, capsys, *needles):
    """Run ``main(argv)``, expect exit status 2 and one clear line (no traceback) containing ``needles``."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    message = [line for line in err.strip().splitlines() if not line.startswith(("usage:", " "))]  # argparse's usage
    assert "Traceback" not in err and len(message) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def _is_colour_png(path) -> bool:
    img = Image.open(path)
    x = np.asarray(img.convert("RGB")).astype(int)
    return img.mode == "RGB" and np.abs(x[..., 0] - x[..., 1]).max() > 0


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory, pics):
    out = tmp_path_factory.mktemp("dcgan_colour")
    assert _train(out, pics) == 0
    return out


def test_train_on_a_folder_writes_a_colour_model_and_grid(dcgan_run, pics):
    ckpt = load_checkpoint(dcgan_run / "dcgan.pt")
    assert ckpt["step"] == 2 and ckpt["dataset"] == f"folder:{pics}"
    assert ckpt["G"]["hparams"]["channels"] == 3 and ckpt["G"]["hparams"]["image_size"] == 32
    assert _is_colour_png(dcgan_run / "dcgan_samples.png")


def test_sample_writes_colour(dcgan_run, tmp_path, capsys):
    ckpt = dcgan_run / "dcgan.pt"
    assert main(["sample", "--checkpoint", str(ckpt), "--num-samples", "9", "--out", str(tmp_path / "g.png")]) == 0
    assert _is_colour_png(tmp_path / "g.png")
    assert main(["sample", "--checkpoint", str(ckpt), "--num-samples", "5", "--out", str(tmp_path / "s.pt")]) == 0
    x = torch.load(tmp_path / "s.pt", weights_only=True)["samples"]
    assert x.shape == (5, 3, 32, 32) and x.min() >= -1 and x.max() <= 1


# --------------------------------------------------------------------------- evaluate: Frechet distance of features
@pytest.fixture
def small_fid(monkeypatch):
    """The default (Inception) extractor replaced by a small fixed random conv net: offline, no weights."""
    net = small_extractor()
    monkeypatch.setattr(fid, "default_extractor", lambda device=None, verbose=True: net)
    return net


def test_evaluate_a_colour_checkpoint(dcgan_run, pics, small_fid, tmp_path, capsys):
    ckpt = dcgan_run / "dcgan.pt"
    report = tmp_path / "fid.json"
    assert main(["evaluate", str(ckpt), "--num-samples", "12", "--json", str(report)]) == 0   # data: the checkpoint's
    out = capsys.readouterr().out
    for needle in ("12 samples vs 12 real images", "Frechet distance", "two halves of the real images (6 each)",
                   "small random conv net (16-D, test only), 16 numbers per image", "32 px"):
        assert needle in out, out
    record = json.loads(report.read_text())
    assert record["num_fake"] == record["num_real"] == 12 and record["dataset"] == f"folder:{pics}"
    assert record["extractor"].startswith("small random conv net") and record["num_features"] == 16
    # the same number from the package's function on the same images: the seeded samples and 12 of the
    # folder's images drawn with seed 0, as the command says
    net_G, _ = models_from_checkpoint(ckpt)
    real = load_image_folder(pics, image_size=32, verbose=False).images
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:12]
    expected = fid.colour_fid(generate(net_G, 12, seed=0), real[pick], extractor=small_fid)
    assert record["fid"] == pytest.approx(expected, rel=1e-9) and record["fid"] > 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ckpt), "--dataset", f"folder:{pics}", "--num-samples", "12"]) == 0
    assert f"{record['fid']:10.2f}" in capsys.readouterr().out


def test_evaluate_colour_refusals(dcgan_run, pics, small_fid, capsys):
    ckpt = str(dcgan_run / "dcgan.pt")
    _fails(["evaluate", ckpt, "--dataset", "mnist"], capsys, "MNIST classifier measures digits", "drop --dataset mnist")
    _fails(["evaluate", ckpt, "--num-samples", "3"], capsys, "at least 4")
    _fails(["evaluate", ckpt, "--checkpoint", "other.pt"], capsys, "two checkpoints", "pass one")
    _fails(["evaluate"], capsys, "no checkpoint given", "evaluate CHECKPOINT", "--checkpoint PATH")
    _fails(["evaluate", ckpt, "--dataset", f"folder:{pics}/missing"], capsys, "There is no folder", "Fix:")


def test_evaluate_offline_without_inception_weights(dcgan_run, monkeypatch, tmp_path, capsys):
    """What a user sees with the extra installed but no internet: one line naming the fix, exit status 2."""
    class Offline:                                       # torchmetrics' FID when torch.hub cannot download
        def __init__(self, **kwargs):
            raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(fid, "_CACHE", {})
    monkeypatch.setattr(fid, "_fid_class", lambda: Offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    err = _fails(["evaluate", str(dcgan_run / "dcgan.pt")], capsys, "Inception-v3 weights", "internet access",
                 str(tmp_path / "hub" / "checkpoints"), "TORCH_HOME")
    assert "Traceback" not in err


def test_evaluate_without_the_fid_extra(dcgan_run, monkeypatch, capsys):
    monkeypatch.setattr(fid, "_CACHE", {})
    for name in ("torchmetrics", "torchmetrics.image", "torchmetrics.image.fid", "torch_fidelity"):
        monkeypatch.setitem(sys.modules, name, None)
    _fails(["evaluate", str(dcgan_run / "dcgan.pt")], capsys, 'pip install "gan-tutorial[fid]"')


def test_streamed_run_resumes_like_an_uninterrupted_one(tmp_path, pics, capsys):
    stream = ("--stream", "--workers", "0")
    assert _train(tmp_path / "straight", pics, *stream, steps="4") == 0
    assert _train(tmp_path / "split", pics, *stream, steps="2") == 0
    assert _train(tmp_path / "split", pics, *stream, "--resume", steps="4") == 0
    a, b = (load_checkpoint(tmp_path / run / "dcgan.pt") for run in ("straight", "split"))
    assert b["step"] == 4 and b["batches"] == a["batches"] == {"seed": 0, "epoch": 1, "pos": 8}
    for key, value in a["G"]["state"].items():
        torch.testing.assert_close(b["G"]["state"][key], value, rtol=0, atol=0, msg=key)
    capsys.readouterr()
    _fails(["train", "--model", "dcgan", "--dataset", "cifar10", "--steps", "5", "--out", str(tmp_path / "split"),
            "--device", "cpu", "--resume"], capsys, "was trained on --dataset folder:", "--dataset folder:")


def test_grey_folder_trains_a_fully_connected_model(tmp_path, pics):
    assert _train(tmp_path, pics, "--channels", "1", model="mlp", steps="1") == 0
    assert load_checkpoint(tmp_path / "mlp.pt")["G"]["hparams"]["out_shape"] == [1, 32, 32]


def test_cifar10_through_the_command_line(tmp_path, monkeypatch, capsys):
    torchvision = pytest.importorskip("torchvision")

    class FakeCIFAR10:
        classes = [str(i) for i in range(10)]

        def __init__(self, root, train=True, download=False):
            assert train and not download
            self.data = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
            self.targets = [i % 10 for i in range(16)]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    monkeypatch.setenv("GAN_TUTORIAL_DATA", str(tmp_path / "data"))
    argv = ["train", "--model", "dcgan", "--dataset", "cifar10", "--steps", "1", "--batch-size", "8",
            "--out", str(tmp_path / "run"), "--device", "cpu"]
    _fails(argv, capsys, "CIFAR-10 was not found", "--download", "cifar-10-batches-py", "GAN_TUTORIAL_DATA")
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    assert main(argv) == 0                                              # 32 px by default
    assert "16 cifar10 images (3 channels, 32 px)" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "run" / "dcgan.pt")["G"]["hparams"]["image_size"] == 32


def test_celeba_offline_through_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GAN_TUTORIAL_DATA", str(tmp_path))
    _fails(["train", "--model", "dcgan", "--dataset", "celeba", "--out", str(tmp_path / "run")], capsys,
           "CelebA was not found", "img_align_celeba.zip", "celeba/img_align_celeba/", "folder:PATH")


# --------------------------------------------------------------------------- refusals: exit 2, one clear line
@pytest.mark.parametrize("extra,needles", [
    (["--model", "mlp"], ["fully connected", "--model dcgan", "--channels 1"]),
    (["--model", "wgan-gp"], ["fully connected", "--model dcgan"]),
    (["--model", "cgan"], ["MNIST only", "--model dcgan"]),
    (["--model", "dcgan", "--image-size", "48"], ["28, 32 or 64", "--image-size 48"]),
    (["--model", "wgan-gp-conv", "--image-size", "16"], ["28, 32 or 64"]),
])
def test_refusals_on_a_colour_folder(tmp_path, pics, capsys, extra, needles):
    _fails(["train", "--dataset", f"folder:{pics}", "--out", str(tmp_path), *extra], capsys, *needles)
    assert not (tmp_path / "dcgan.pt").exists()


@pytest.mark.parametrize("argv,needles", [
    (["--dataset", "mnist", "--channels", "3"], ["MNIST is grey-scale", "drop --channels 3"]),
    (["--dataset", "cifar10", "--stream"], ["fits in memory", "drop --stream"]),
    (["--dataset", "imagenet"], ["mnist, cifar10, celeba or folder:PATH"]),
    (["--dataset", "folder:"], ["folder:PATH"]),
    (["--channels", "2"], ["invalid choice"]),
    (["--workers", "-1"], [">= 0"]),
])
def test_bad_data_arguments(tmp_path, capsys, argv, needles):
    _fails(["train", "--model", "dcgan", "--out", str(tmp_path), *argv], capsys, *needles)


def test_missing_or_empty_folder(tmp_path, capsys):
    _fails(["train", "--model", "dcgan", "--dataset", f"folder:{tmp_path / 'nope'}", "--out", str(tmp_path / "r")],
           capsys, "There is no folder", "Fix:")
    (tmp_path / "empty").mkdir()
    _fails(["train", "--model", "dcgan", "--dataset", f"folder:{tmp_path / 'empty'}", "--out", str(tmp_path / "r")],
           capsys, "holds no image files", "Fix:")
