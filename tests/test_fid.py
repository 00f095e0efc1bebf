"""Colour FID (gan_tutorial.fid): the pixel conversion, agreement with an independent reference on the
features of a small fixed random conv net, bad input, the missing extra and the offline message.
Tests that need torchmetrics / torch-fidelity (the ``fid`` extra, not a test dependency) are skipped
without them; none needs the real Inception weights or the network."""
import socket
import sys
import urllib.error

import pytest
import torch
import torch.nn as nn

from gan_tutorial import fid, metrics
from gan_tutorial.data import from_uint8


def small_extractor(seed: int = 0) -> nn.Module:
    """A fixed random conv net: images (N, 3, H, W) in [-1, 1] -> (N, 16) features."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Tanh(),       # (N, 8, H/2, W/2)
                        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.Tanh(),      # (N, 16, H/4, W/4)
                        nn.AdaptiveAvgPool2d(1), nn.Flatten())                    # (N, 16)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    net.name, net.num_features = "small random conv net (16-D, test only)", 16
    return net


def _images(n, seed, size=16, shift=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256 - shift, (n, 3, size, size), generator=g) + shift).to(torch.uint8)


@pytest.fixture
def no_cache(monkeypatch, tmp_path):
    """A fresh extractor cache and an empty torch hub folder (nothing downloaded)."""
    monkeypatch.setattr(fid, "_CACHE", {})
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


# --------------------------------------------------------------------------- conversion
def test_to_uint8_inverts_from_uint8_and_clips():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(fid.to_uint8(from_uint8(pixels)), pixels)
    assert fid.to_uint8(pixels) is pixels
    x = torch.tensor([-1.5, -1.0, 0.0, 1.0, 2.0])
    assert fid.to_uint8(x).tolist() == [0, 0, 128, 255, 255]        # 0.0 -> 127.5, rounded half to even
    assert fid.to_uint8(x).dtype == torch.uint8


# --------------------------------------------------------------------------- agreement with references
def test_colour_fid_matches_scipy_on_the_same_features():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    net = small_extractor()
    fake, real = _images(60, 1), _images(50, 2, shift=40)
    value = fid.colour_fid(fake, real, extractor=net, batch_size=16)
    with torch.no_grad():
        fa, fb = net(from_uint8(fake)).double(), net(from_uint8(real)).double()
    mu1, mu2 = fa.mean(0), fb.mean(0)
    s1, s2 = torch.cov(fa.T), torch.cov(fb.T)                       # unbiased, like the package
    covmean = scipy_linalg.sqrtm((s1 @ s2).numpy()).real
    expected = float(((mu1 - mu2) ** 2).sum() + torch.trace(s1 + s2) - 2 * covmean.trace())
    assert value > 0 and value == pytest.approx(expected, rel=1e-5)
    assert value == pytest.approx(metrics.frechet_distance_features(fa, fb), rel=1e-9)


def test_uint8_and_float_inputs_batches_and_order():
    net = small_extractor()
    fake, real = _images(20, 3), _images(20, 4)
    value = fid.colour_fid(fake, real, extractor=net)
    assert fid.colour_fid(from_uint8(fake), from_uint8(real), extractor=net, batch_size=3) == pytest.approx(value, rel=1e-6)
    assert fid.colour_fid(real, fake, extractor=net) == pytest.approx(value, rel=1e-6)            # symmetric
    assert fid.colour_fid(real, real, extractor=net) == pytest.approx(0.0, abs=1e-6)
    feats = fid.extract_features(fake, net, batch_size=7)
    assert feats.shape == (20, 16) and feats.dtype == torch.float64


def test_any_callable_is_an_extractor():
    calls = []

    def mean_colour(x):                                             # (N, 3, H, W) in [-1, 1] -> (N, 3)
        calls.append((x.dtype, float(x.min()), float(x.max())))
        return x.mean(dim=(2, 3))

    fake, real = _images(10, 5), _images(10, 6)
    value = fid.colour_fid(fake, real, extractor=mean_colour)
    assert value == pytest.approx(metrics.frechet_distance_features(from_uint8(fake).mean(dim=(2, 3)),
                                                                    from_uint8(real).mean(dim=(2, 3))))
    assert all(dtype == torch.float32 and lo >= -1 and hi <= 1 for dtype, lo, hi in calls)
    assert fid.extractor_name(mean_colour) == "function" and fid.extractor_name(small_extractor()).startswith("small")


@pytest.mark.parametrize("fake,real,match", [
    (torch.zeros(4, 3, 8), torch.zeros(4, 3, 8, 8), "at least 2 images"),
    (torch.zeros(1, 3, 8, 8), torch.zeros(4, 3, 8, 8), "at least 2 images"),
    (torch.zeros(4, 1, 8, 8), torch.zeros(4, 3, 8, 8), "channels"),
])
def test_bad_input_raises(fake, real, match):
    with pytest.raises(ValueError, match=match):
        fid.colour_fid(fake, real, extractor=small_extractor())


# --------------------------------------------------------------------------- without the extra, offline
def test_missing_extra_names_the_install_command(monkeypatch, no_cache):
    for name in ("torchmetrics", "torchmetrics.image", "torchmetrics.image.fid", "torch_fidelity"):
        monkeypatch.setitem(sys.modules, name, None)                 # `import name` now raises ImportError
    with pytest.raises(fid.MissingExtraError, match=r'pip install "gan-tutorial\[fid\]"'):
        fid.colour_fid(_images(4, 0), _images(4, 1))
    assert issubclass(fid.MissingExtraError, ImportError)


class _OfflineFID:
    """Stands in for torchmetrics' FrechetInceptionDistance: construction fails as torch.hub does offline."""

    def __init__(self, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))


def test_offline_announces_the_download_then_says_where_to_put_the_file(monkeypatch, no_cache, tmp_path, capsys):
    monkeypatch.setattr(fid, "_fid_class", lambda: _OfflineFID)
    with pytest.raises(fid.WeightsNotFoundError) as info:
        fid.default_extractor("cpu")
    message = str(info.value)
    target = tmp_path / "torch" / "hub" / "checkpoints" / fid.weights_url().rsplit("/", 1)[-1]
    assert fid.weights_path() == target
    for needle in ("URLError", "internet access", fid.weights_url(), str(target), "TORCH_HOME"):
        assert needle in message, message
    out = capsys.readouterr().out
    assert "Downloading the Inception-v3 weights" in out and "96 MB" in out and str(target.parent) in out


def test_a_damaged_cached_file_says_delete_it(monkeypatch, no_cache, capsys):
    class Damaged:
        def __init__(self, **kwargs):
            raise RuntimeError("PytorchStreamReader failed reading zip archive")

    monkeypatch.setattr(fid, "_fid_class", lambda: Damaged)
    fid.weights_path().parent.mkdir(parents=True)
    fid.weights_path().write_bytes(b"not weights")
    with pytest.raises(fid.WeightsNotFoundError, match="damaged.*delete"):
        fid.default_extractor("cpu")
    assert "Downloading" not in capsys.readouterr().out               # a cached file is not announced


# --------------------------------------------------------------------------- with torchmetrics (random weights)
@pytest.fixture(scope="module")
def random_inception():
    """A state dict for torch-fidelity's Inception-v3 with random weights (no download).

    Its batch-norm statistics are set from one batch of random images, so that the features do not
    vanish through the 94 layers (with default statistics they are ~1e-7 and every FID ~1e-13).
    """
    pytest.importorskip("torchmetrics")
    inception = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(inception, "load_state_dict_from_url", lambda *a, **k: None)
        m.setattr(inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
        torch.manual_seed(0)
        net = inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None                                            # running stats = this batch's stats
        bn.train()
    with torch.no_grad():
        net(_images(8, 99, size=32))
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_torchmetrics_offline_error_is_caught(monkeypatch, no_cache, random_inception):
    """torch.hub raises urllib.error.URLError offline (seen with torchmetrics 1.9, torch-fidelity 0.4)."""
    from torch_fidelity import feature_extractor_inceptionv3 as inception

    def offline(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(inception, "load_state_dict_from_url", offline)
    with pytest.raises(fid.WeightsNotFoundError, match="internet access"):
        fid.default_extractor("cpu")


def test_inception_extractor_gets_uint8_and_agrees_with_torchmetrics(monkeypatch, no_cache, random_inception, capsys,
                                                                     one_thread):
    from torch_fidelity import feature_extractor_inceptionv3 as inception
    from torchmetrics.image.fid import FrechetInceptionDistance

    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: random_inception)
    extractor = fid.default_extractor("cpu")
    assert "Downloading the Inception-v3 weights" in capsys.readouterr().out
    assert fid.default_extractor("cpu") is extractor                  # built once per device
    fake, real = _images(4, 7, size=32), _images(4, 8, size=32, shift=60)
    f = extractor(from_uint8(fake))                                   # torch-fidelity asserts uint8 input
    assert f.shape == (4, 2048) and f.dtype == torch.float32 and torch.isfinite(f).all()
    assert torch.equal(f, extractor(fake))                            # floats in [-1, 1] are rounded back exactly
    assert extractor(fake[:1, :1]).shape == (1, 2048)                 # grey images are repeated to 3 channels
    reference = FrechetInceptionDistance(feature=2048, normalize=False)   # the maintained implementation
    reference.update(real, real=True)
    reference.update(fake, real=False)
    value = fid.colour_fid(fake, real, extractor=extractor)
    assert value > 1 and value == pytest.approx(float(reference.compute()), rel=1e-5)
