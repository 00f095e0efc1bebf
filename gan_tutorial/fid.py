"""Fréchet distance for colour images: FID with Inception-v3 features, or with any extractor you pass.

:func:`colour_fid` maps both image sets to features, fits a Gaussian to each and compares them with
:func:`gan_tutorial.metrics.frechet_distance` (float64). With ``extractor=None`` the features are the
2048 pool features of Inception-v3 -- the network FID is defined with -- taken from torchmetrics'
``FrechetInceptionDistance`` (torch-fidelity's port of the original TensorFlow weights). That is
an optional extra: ``pip install "gan-tutorial[fid]"``. Its weights (about 96 MB) are downloaded
once from GitHub into torch's hub cache; the download is announced, and offline the error says
where to put the file.

An extractor is any callable mapping float images in [-1, 1], ``(N, C, H, W)``, to ``(N, D)``
features (``colour_fid`` converts uint8 pixels for it). :class:`InceptionFeatures` hands Inception
uint8 pixels 0..255 (torchmetrics' ``normalize=False`` input), resized by the network to 299 px.
"""
from __future__ import annotations

import contextlib
import http.client
from pathlib import Path

import torch

from .data import from_uint8
from .metrics import frechet_distance_features

INSTALL = ('pip install "gan-tutorial[fid]" (in a clone of the repository: pip install -e ".[fid]"; '
           'or directly: pip install "torchmetrics>=1.0" "torch-fidelity>=0.3")')
WEIGHTS_MB = 96                     # torch-fidelity's Inception-v3 weights, float32 (23.9 M numbers)
WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
               "weights-inception-2015-12-05-6726825d.pth")   # as in torch-fidelity 0.4; the installed one's wins


class MissingExtraError(ImportError):
    """torchmetrics or torch-fidelity is not installed; the message gives the pip command."""


class WeightsNotFoundError(FileNotFoundError):
    """The Inception weights are not cached and could not be downloaded; the message names the fix."""


FID_ERRORS = (MissingExtraError, WeightsNotFoundError)   # catch these to fall back when FID cannot run here


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as pixels 0..255 (uint8), rounded and clipped; uint8 images are returned as they are.

    The inverse of :func:`gan_tutorial.data.from_uint8`: ``to_uint8(from_uint8(x)) == x``.
    """
    if images.dtype == torch.uint8:
        return images
    return images.float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def _fid_class():
    try:
        import torch_fidelity  # noqa: F401  (torchmetrics needs it for the Inception network)
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as e:
        raise MissingExtraError(f"The Inception FID needs the optional extra 'fid' ({e}). Fix: {INSTALL}.") from e
    return FrechetInceptionDistance


def weights_url() -> str:
    """Where torch-fidelity downloads the Inception weights from (a GitHub release)."""
    try:
        from torch_fidelity import feature_extractor_inceptionv3 as inception
    except ImportError:
        return WEIGHTS_URL
    return getattr(inception, "URL_INCEPTION_V3", WEIGHTS_URL)


def weights_path() -> Path:
    """Where torch keeps the Inception weights once fetched (``$TORCH_HOME/hub/checkpoints/...``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / weights_url().rsplit("/", 1)[-1]


class InceptionFeatures:
    """Inception-v3 pool features (2048-D) from torchmetrics, as an extractor for :func:`colour_fid`.

    Takes images in [-1, 1] (or uint8), ``(N, 3, H, W)`` (1-channel images are repeated to 3), and
    gives the network uint8 pixels; returns float32 ``(N, 2048)`` on the CPU.
    """

    name = "Inception-v3 pool features (2048-D, torchmetrics / torch-fidelity weights)"
    num_features = 2048

    def __init__(self, device=None, verbose: bool = True):
        from . import config

        metric_class = _fid_class()
        path, url = weights_path(), weights_url()
        cached = path.is_file()
        if verbose and not cached:
            print(f"Downloading the Inception-v3 weights for FID (about {WEIGHTS_MB} MB, once) from {url} "
                  f"into {path.parent} ...", flush=True)
        try:
            metric = metric_class(feature=2048, normalize=False)
        except Exception as e:
            if cached:                                       # a cached file that torch cannot read
                raise WeightsNotFoundError(f"{path} is damaged ({type(e).__name__}: {str(e)[:150]}). Fix: delete "
                                           "it and run again to download it afresh.") from e
            if not isinstance(e, (OSError, http.client.HTTPException)):   # offline: urllib.error.URLError
                raise
            raise WeightsNotFoundError(
                f"Could not download the Inception-v3 weights for FID ({type(e).__name__}: {e}). Fix: run this "
                f"once with internet access (the file is then cached), or download {url} elsewhere and put it "
                f"at {path} (torch's hub cache; set TORCH_HOME to move it).") from e
        self.device = config.get_device(device)
        self.net = metric.inception.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = to_uint8(images.to(self.device))
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(x).float().cpu()


_CACHE: dict[str, InceptionFeatures] = {}


def default_extractor(device=None, verbose: bool = True) -> InceptionFeatures:
    """The Inception extractor on ``device`` (built once per device; see :class:`InceptionFeatures`)."""
    from . import config

    key = str(config.get_device(device))
    if key not in _CACHE:
        _CACHE[key] = InceptionFeatures(key, verbose)
    return _CACHE[key]


def extractor_name(extractor) -> str:
    """A readable name: ``extractor.name`` when it has one, else its class name."""
    return getattr(extractor, "name", None) or type(extractor).__name__


def _device_of(extractor) -> torch.device:
    if getattr(extractor, "device", None) is not None:
        return torch.device(extractor.device)
    if isinstance(extractor, torch.nn.Module):
        first = next(extractor.parameters(), None)
        return first.device if first is not None else torch.device("cpu")
    return torch.device("cpu")


def extract_features(images: torch.Tensor, extractor, batch_size: int = 100) -> torch.Tensor:
    """``extractor`` applied to ``(N, C, H, W)`` images in batches: float64 ``(N, D)`` on the CPU.

    uint8 pixels are converted to [-1, 1] first (on the extractor's device); modules run in eval mode.
    """
    images = torch.as_tensor(images)
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    device = _device_of(extractor)
    modes = contextlib.nullcontext()
    if isinstance(extractor, torch.nn.Module):
        from .models import eval_mode

        modes = eval_mode(extractor)
    out = []
    with torch.no_grad(), modes:
        for i in range(0, images.shape[0], max(1, batch_size)):
            x = images[i : i + batch_size].to(device)
            x = from_uint8(x) if x.dtype == torch.uint8 else x.float()
            f = extractor(x)
            out.append(f.detach().reshape(f.shape[0], -1).double().cpu())
    return torch.cat(out)


def colour_fid(fake: torch.Tensor, real: torch.Tensor, extractor=None, batch_size: int = 100,
               device=None) -> float:
    """Fréchet distance between the features of two image sets; FID with the default extractor.

    ``|mu_f - mu_r|^2 + tr(S_f + S_r - 2 (S_f^1/2 S_r S_f^1/2)^1/2)`` for the mean and covariance of
    each set's features. ``fake``/``real``: ``(N, C, H, W)`` in [-1, 1] or uint8. ``extractor``: a
    callable (see the module docstring); ``None`` means Inception-v3 on ``device`` (needs the
    ``fid`` extra and its weights; raises :class:`MissingExtraError` or :class:`WeightsNotFoundError`).

    The estimate is biased upwards for small sets and depends on N: compare only numbers computed
    with the same extractor and N (papers use 50,000 images; fewer than 2,048 leave Inception's
    covariance rank-deficient). Lower is better.
    """
    for name, x in (("fake", fake), ("real", real)):
        if x.dim() != 4 or x.shape[0] < 2:
            raise ValueError(f"{name} must be at least 2 images (N, C, H, W), got shape {tuple(x.shape)}")
    if fake.shape[1] != real.shape[1]:
        raise ValueError(f"fake and real images have {fake.shape[1]} and {real.shape[1]} channels")
    extractor = default_extractor(device) if extractor is None else extractor
    fa = extract_features(fake, extractor, batch_size)
    fb = extract_features(real, extractor, batch_size)
    return max(0.0, frechet_distance_features(fa, fb))


__all__ = ["colour_fid", "extract_features", "InceptionFeatures", "default_extractor", "extractor_name", "to_uint8",
           "weights_path", "weights_url", "MissingExtraError", "WeightsNotFoundError", "FID_ERRORS", "INSTALL"]
