"""Style and content losses on CNN features, AdaIN, and style transfer by optimising an image.

Conventions (all tensors are ``float``):

* images: ``(B, 3, H, W)`` with values in ``[0, 1]``; the extractor normalises them itself;
* features: ``(B, C, H, W)``; Gram matrices: ``(B, C, C)``.

The Gram matrix is normalised by the number of positions, ``G = F F^T / (H W)``: entry ``(i, j)``
is the average over positions of ``f_i * f_j``, so it does not grow with the image size. With it,
``style_loss`` is ``4x`` the per-layer loss ``E_l`` of Gatys et al. (2016), whose ``1 / (4 N^2 M^2)``
factor is written for the unnormalised Gram.

The feature network is VGG-19 (Simonyan & Zisserman, 2014), with one rule on every machine:

1. its ImageNet weights from torch.hub's cache (torchvision's file) when they are there;
2. else they are downloaded (about 548 MB, once, announced with the size) -- unless downloading is
   switched off with ``download=False`` or ``GAN_TUTORIAL_DOWNLOAD=0``;
3. only when they cannot be had (offline, download failed or switched off) the same architecture
   with fixed random weights, announced. Random convolutional features still capture texture
   statistics (Ustyuzhaninov et al., 2016), so every idea here can be tried offline.

``VGGFeatures.source`` says which network is in use.
"""
from __future__ import annotations

import contextlib
import difflib
import math
import os
import socket
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys et al.
CONTENT_LAYERS = ("conv4_2",)

_VGG19_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
               512, 512, 512, 512, "M")


def _vgg19_names() -> list[str]:
    names, block, conv = [], 1, 1
    for item in _VGG19_PLAN:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


VGG19_LAYERS = tuple(_vgg19_names())  # ('conv1_1', 'relu1_1', 'conv1_2', ..., 'pool5')


# --------------------------------------------------------------------------- losses
def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``G[b, i, j] = sum_p F[b, i, p] F[b, j, p] / (H W)``.

    ``features``: ``(B, C, H, W)`` -> ``(B, C, C)``. The sum runs over the ``H W`` positions,
    so the layout of the features is forgotten: only which channels fire together remains.
    """
    if features.dim() != 4:
        raise ValueError(f"gram_matrix expects (B, C, H, W) features, got shape {tuple(features.shape)}")
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Mean squared error between feature maps, averaged over all ``B C H W`` entries.

    With ``normalize=True`` it is divided by ``mean(target^2)`` (a relative error, which makes the
    loss comparable between networks whose features have different scales). Returns a scalar.
    """
    loss = F.mse_loss(features, target)
    return loss / target.pow(2).mean().clamp_min(1e-12) if normalize else loss


def _as_list(x):
    if isinstance(x, torch.Tensor):
        return [x]
    return list(x.values()) if isinstance(x, dict) else list(x)


def style_loss(features, target_grams, normalize: bool = False) -> torch.Tensor:
    """Style loss: the mean over layers of ``mean((gram_matrix(F_l) - A_l)^2)``.

    ``features``: one ``(B, C, H, W)`` tensor, or a list / dict of them (one per layer);
    ``target_grams``: the matching ``(B or 1, C, C)`` Gram matrices of the style image, in the
    same order. ``normalize=True`` divides each layer's term by ``mean(A_l^2)`` -- a constant per
    layer, i.e. a choice of layer weights that puts every layer on the same scale. Returns a scalar.
    """
    feats, grams = _as_list(features), _as_list(target_grams)
    if len(feats) != len(grams) or not feats:
        raise ValueError(f"need one target Gram per feature map, got {len(feats)} maps and {len(grams)} Grams")
    total = 0.0
    for f, a in zip(feats, grams):
        term = (gram_matrix(f) - a).pow(2).mean()
        total = total + (term / a.pow(2).mean().clamp_min(1e-12) if normalize else term)
    return total / len(feats)


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance normalisation (Huang & Belongie, 2017).

    ``sigma_s * (content - mu_c) / sigma_c + mu_s`` with per-sample, per-channel mean and standard
    deviation over the ``H W`` positions (population std, ``eps`` added to the variance).
    ``content``: ``(B, C, H, W)``; ``style``: ``(B or 1, C, H', W')`` (sizes may differ).
    Returns a tensor shaped like ``content``.
    """
    if content.dim() != 4 or style.dim() != 4 or content.shape[1] != style.shape[1]:
        raise ValueError(f"adain expects (B, C, H, W) maps with the same C, got {tuple(content.shape)} "
                         f"and {tuple(style.shape)}")
    mu_c, mu_s = content.mean((2, 3), keepdim=True), style.mean((2, 3), keepdim=True)
    sd_c = (content.var((2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    sd_s = (style.var((2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return sd_s * (content - mu_c) / sd_c + mu_s


# --------------------------------------------------------------------------- the feature network
def vgg19_cache_path() -> Path:
    """Where torch.hub keeps the VGG-19 file (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_URL.rsplit("/", 1)[-1]


def _download_allowed(download) -> bool:
    """``download`` if given, else ``$GAN_TUTORIAL_DOWNLOAD`` (``0``/``false``/``no``/``off`` switch it off); on by default."""
    if download is not None:
        return bool(download)
    return os.environ.get("GAN_TUTORIAL_DOWNLOAD", "").strip().lower() not in ("0", "false", "no", "off")


def _vgg19_megabytes() -> float:
    try:
        from torchvision.models import VGG19_Weights

        return float(VGG19_Weights.IMAGENET1K_V1.meta["_file_size"])
    except (ImportError, KeyError, AttributeError):  # older torchvision: the size it documents
        return 548.1


class _CacheByName:
    """A stand-in for ``sys.stdout`` / ``sys.stderr`` that names torch.hub's cache folder instead of its path."""

    def __init__(self, stream, folder: str):
        self.stream, self.folder = stream, str(folder)

    def write(self, text: str) -> int:
        return self.stream.write(text.replace(self.folder, "<torch.hub cache>"))

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _imagenet_state(download) -> tuple[dict | None, str]:
    """``(features.* weights of torchvision's VGG-19, "")``, or ``(None, why not)`` when they cannot be had."""
    path = vgg19_cache_path()
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise RuntimeError(f"The VGG-19 file {path.name} in torch.hub's cache cannot be read ({type(err).__name__}). "
                               f"Fix: delete it (it is in {Path(torch.hub.get_dir()).name}/checkpoints under "
                               "torch.hub.get_dir()) and run again to download it afresh.") from err
    elif not _download_allowed(download):
        return None, "not in torch.hub's cache, and downloading is switched off"
    else:
        print(f"Downloading VGG-19 ImageNet weights ({_vgg19_megabytes():.0f} MB, once) into torch.hub's cache ...")
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(20)  # fail within seconds when offline instead of hanging
        try:  # torch.hub writes to a temporary file and moves it into place only when complete and hash-checked
            hub = torch.hub.get_dir()
            with contextlib.redirect_stdout(_CacheByName(sys.stdout, hub)), \
                    contextlib.redirect_stderr(_CacheByName(sys.stderr, hub)):
                state = torch.hub.load_state_dict_from_url(VGG19_URL, progress=True, map_location="cpu",
                                                           check_hash=True)
        except Exception as err:  # no network, proxy, disk full...
            print(f"  download failed ({type(err).__name__}: {err})")
            return None, f"not in torch.hub's cache, and the download failed ({type(err).__name__})"
        finally:
            socket.setdefaulttimeout(old)
    return {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}, ""


class VGGFeatures(nn.Module):
    """VGG-19 feature maps by layer name (``'relu1_1'``, ``'conv4_2'``, ... see ``VGG19_LAYERS``).

    Args:
        layers: the names returned by default; the network is cut after the deepest one.
        weights: ``'auto'`` (ImageNet when they can be had, else random, announced), ``'imagenet'``
            (error if they cannot be had) or ``'random'``.
        download: may the ImageNet weights be downloaded when they are not cached? (default: yes,
            unless ``GAN_TUTORIAL_DOWNLOAD=0``).
        seed: seed of the random weights (He-normal, zero bias), so results are reproducible.

    ``forward(images, layers=None)`` takes ``(B, 3, H, W)`` images in ``[0, 1]`` and returns a dict
    ``name -> (B, C, H', W')``. ``.source`` says which weights are in use. Parameters are frozen.
    """

    def __init__(self, layers=STYLE_LAYERS + CONTENT_LAYERS, weights: str = "auto", download=None,
                 seed: int = 0, verbose: bool = True):
        super().__init__()
        self.layers = tuple(self._check(layers))
        if weights not in ("auto", "imagenet", "random"):
            raise ValueError(f"weights must be 'auto', 'imagenet' or 'random', got {weights!r}")
        depth = max(VGG19_LAYERS.index(n) for n in self.layers) + 1
        modules, in_ch = [], 3
        for item in _VGG19_PLAN:
            if item == "M":
                modules.append(nn.MaxPool2d(2))
            else:
                modules += [nn.Conv2d(in_ch, item, 3, padding=1), nn.ReLU()]
                in_ch = item
        self.net = nn.Sequential(*modules[:depth])
        state, why = (None, "random weights asked for") if weights == "random" else _imagenet_state(download)
        if state is not None:
            self.net.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) < depth})
            self.source = "ImageNet (torchvision VGG19_Weights.IMAGENET1K_V1)"
        elif weights == "imagenet":
            raise FileNotFoundError(
                f"VGG-19 ImageNet weights could not be had: {why}. Fix: run once with internet access and "
                "download=True (GAN_TUTORIAL_DOWNLOAD unset or 1), or copy "
                f"{vgg19_cache_path().name} into torch.hub's cache (torch.hub.get_dir()/checkpoints); "
                "weights='auto' falls back to random weights instead.")
        else:
            self._randomize(seed)
            self.source = f"random weights (He-normal, seed {seed})"
            if verbose and weights == "auto":
                print(f"VGG-19 ImageNet weights could not be had ({why}):\n"
                      f"  using RANDOM weights (seed {seed}). They still capture texture statistics, but "
                      "results differ from the pretrained network.\n"
                      f"  For ImageNet weights run with internet access and download=True "
                      f"(about {_vgg19_megabytes():.0f} MB, once).")
        if verbose and state is not None:
            print(f"VGG-19 features: {self.source}")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _check(layers) -> list[str]:
        layers = [layers] if isinstance(layers, str) else list(layers)
        for name in layers:
            if name not in VGG19_LAYERS:
                close = difflib.get_close_matches(str(name), VGG19_LAYERS, n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"Unknown VGG-19 layer {name!r}.{hint} Valid names: {', '.join(VGG19_LAYERS)}")
        if not layers:
            raise ValueError("ask for at least one layer")
        return layers

    @torch.no_grad()
    def _randomize(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in))
                m.bias.zero_()

    def forward(self, images: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
        wanted = self.layers if layers is None else self._check(layers)
        last = max(VGG19_LAYERS.index(n) for n in wanted)
        if last >= len(self.net):
            raise ValueError(f"layer {VGG19_LAYERS[last]!r} is deeper than this extractor "
                             f"(built up to {VGG19_LAYERS[len(self.net) - 1]!r}); rebuild it with that layer")
        out, x = {}, (images - self.mean) / self.std
        for i, module in enumerate(self.net[: last + 1]):
            x = module(x)
            if VGG19_LAYERS[i] in wanted:
                out[VGG19_LAYERS[i]] = x
        return out


# --------------------------------------------------------------------------- style transfer
def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation (squared form) of ``(B, C, H, W)`` images, a scalar:

    ``mean((x[..., 1:, :] - x[..., :-1, :])^2) + mean((x[..., :, 1:] - x[..., :, :-1])^2)``, the mean
    squared difference of vertically plus that of horizontally adjacent pixels. It is 0 for a flat
    image and large for pixel-level grain; as a penalty it smooths what the feature losses leave noisy.
    """
    if image.dim() != 4:
        raise ValueError(f"tv_loss expects (B, C, H, W) images, got shape {tuple(image.shape)}")
    vertical = (image[..., 1:, :] - image[..., :-1, :]).pow(2).mean()
    horizontal = (image[..., :, 1:] - image[..., :, :-1]).pow(2).mean()
    return vertical + horizontal


def range_penalty(image: torch.Tensor) -> torch.Tensor:
    """``mean(relu(x - 1)^2 + relu(-x)^2)``: 0 inside ``[0, 1]``, growing smoothly outside it (a scalar)."""
    return (F.relu(image - 1).pow(2) + F.relu(-image).pow(2)).mean()


def optimize_image(image: torch.Tensor, extractor: VGGFeatures, content_targets: dict | None = None,
                   style_grams: dict | None = None, content_weight: float = 1.0, style_weight: float = 1.0,
                   steps: int = 100, optimizer: str = "lbfgs", lr: float | None = None, tv_weight: float = 0.0,
                   range_weight: float = 1000.0, progress: bool = True, desc: str = "optimising pixels"):
    """Optimise the pixels of (a copy of) ``image`` so its features match the targets.

    Minimises ``content_weight * C + style_weight * S + tv_weight * tv_loss(x) + range_weight *
    range_penalty(x)``, where ``C`` is the mean over the layers of ``content_targets`` (``name -> (1, C,
    H, W)`` features) of ``content_loss(..., normalize=True)`` and ``S = style_loss(..., normalize=True)``
    over the layers of ``style_grams`` (``name -> (1, C, C)``). ``image``: ``(1, 3, H, W)`` in ``[0, 1]``.
    The range penalty keeps the pixels in ``[0, 1]`` with a smooth wall (clamping during the run would
    make the objective non-smooth, which can stall L-BFGS); the returned image is clamped to ``[0, 1]``.

    ``steps`` is the budget in loss evaluations (one forward and one backward pass each: the cost).
    ``optimizer``: ``'lbfgs'`` -- L-BFGS with a strong-Wolfe line search, in rounds of up to 20
    iterations (an iteration takes one evaluation, more when the line search needs them; the last one
    may overrun ``steps`` by a few) -- or ``'adam'`` (one evaluation per step; ``lr`` default 0.02).

    Returns ``(image, history)``: ``history['content' | 'style' | 'tv' | 'total']`` list the losses of
    every evaluation in order (L-BFGS line-search trials included; ``'total'`` is the whole objective,
    range penalty included), ``history['final']`` the same losses at the returned image.
    """
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    content_targets, style_grams = dict(content_targets or {}), dict(style_grams or {})
    if not content_targets and not style_grams:
        raise ValueError("give content_targets and/or style_grams")
    device = next(extractor.buffers()).device
    layers = list(dict.fromkeys([*content_targets, *style_grams]))
    image = image.detach().clone().to(device).requires_grad_(True)
    zero = torch.zeros((), device=device)
    keys = ("content", "style", "tv", "total")
    history = {key: [] for key in keys}

    def losses(x):
        feats = extractor(x, layers)
        c = sum((content_loss(feats[k], t, normalize=True) for k, t in content_targets.items()), zero)
        c = c / max(1, len(content_targets))
        s = style_loss([feats[k] for k in style_grams], list(style_grams.values()), normalize=True) \
            if style_grams else zero
        tv = tv_loss(x) if tv_weight else zero
        total = content_weight * c + style_weight * s + tv_weight * tv
        if range_weight:
            total = total + range_weight * range_penalty(x)
        return c, s, tv, total

    from tqdm.auto import tqdm

    bar = tqdm(total=steps, desc=desc, unit="eval", disable=not progress, leave=False)

    def closure():
        opt.zero_grad()
        values = losses(image)
        values[-1].backward()
        for key, value in zip(keys, values):
            history[key].append(float(value.detach()))
        bar.update(1)
        return values[-1]

    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([image], lr=lr or 1.0, max_iter=20, history_size=50, line_search_fn="strong_wolfe")
        while len(history["total"]) < steps:
            before = len(history["total"])
            opt.param_groups[0]["max_eval"] = steps - before  # end the round when the budget is spent
            opt.step(closure)
            if len(history["total"]) - before <= 1:  # converged: L-BFGS took no step
                break
    else:
        opt = torch.optim.Adam([image], lr=lr or 0.02)
        for _ in range(steps):
            opt.step(closure)
    bar.close()
    with torch.no_grad():
        image.clamp_(0, 1)
        history["final"] = dict(zip(keys, map(float, losses(image))))
    return image.detach(), history


def noise_image(size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """Grey image with a little Gaussian noise, ``(1, 3, H, W)``: a neutral starting point."""
    gen = torch.Generator().manual_seed(seed)
    return (0.5 + 0.1 * torch.randn((1, 3, *size), generator=gen)).clamp(0, 1)


def style_transfer(content: torch.Tensor | None, style: torch.Tensor, extractor: VGGFeatures,
                   content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS, content_weight: float = 1.0,
                   style_weight: float = 10.0, steps: int = 200, init: str = "content",
                   size: tuple[int, int] | None = None, seed: int = 0, **kwargs):
    """Style transfer by optimising an image (Gatys et al., 2016); see :func:`optimize_image`.

    ``content``: ``(1, 3, H, W)`` in ``[0, 1]``, or ``None`` for texture synthesis (give ``size``);
    ``style``: ``(1, 3, H', W')``. Targets: ``content``'s features at ``content_layers`` and
    ``style``'s Gram matrices at ``style_layers``. ``init``: ``'content'`` (start from the photo,
    converges faster) or ``'noise'``. ``steps``: the budget in loss evaluations. Other keyword
    arguments (``optimizer``, ``lr``, ``tv_weight``, ``progress``) go to :func:`optimize_image`.
    Returns ``(image, history)``.
    """
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}")
    if content is None and (init != "noise" or size is None):
        raise ValueError("without a content image use init='noise' and give size=(H, W)")
    device = next(extractor.buffers()).device
    use_content = content is not None and content_weight > 0 and len(content_layers) > 0
    with torch.no_grad():
        targets = extractor(content.to(device), content_layers) if use_content else {}
        grams = {k: gram_matrix(v) for k, v in extractor(style.to(device), style_layers).items()}
    start = content if init == "content" else noise_image(size or tuple(content.shape[-2:]), seed)
    kwargs.setdefault("desc", "style transfer")
    return optimize_image(start, extractor, targets, grams, content_weight, style_weight, steps, **kwargs)


# --------------------------------------------------------------------------- images
def load_image(source, size: int | None = 256, fallback: torch.Tensor | None = None) -> torch.Tensor:
    """Load a picture (path or http(s) URL) as a ``(1, 3, H, W)`` tensor in ``[0, 1]``.

    ``size``: length of the shorter side after resizing (``None``: keep). If loading fails and a
    ``fallback`` tensor is given, the reason is printed and the fallback returned.
    """
    import io
    import urllib.request

    import matplotlib.image as mpimg

    try:
        src = str(source)
        if src.startswith(("http://", "https://")):
            req = urllib.request.Request(src, headers={"User-Agent": "gan-tutorial"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                data = io.BytesIO(resp.read())
            array = mpimg.imread(data, format=src.rsplit(".", 1)[-1].split("?")[0].lower())
        else:
            array = mpimg.imread(src)
    except Exception as err:
        if fallback is None:
            raise
        print(f"Could not load the image ({type(err).__name__}: {err}); using the built-in one instead.")
        return fallback
    image = torch.tensor(array).float()  # a copy: imread may return a read-only array
    if image.max() > 1.0:
        image = image / 255.0
    if image.dim() == 2:
        image = image[..., None].expand(-1, -1, 3)
    image = image[..., :3].permute(2, 0, 1)[None].contiguous()
    return resize(image, size) if size else image


def resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(B, 3, H, W)`` so the shorter side is ``size`` (antialiased bilinear)."""
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    out = F.interpolate(image, size=(round(h * scale), round(w * scale)), mode="bilinear",
                        antialias=True, align_corners=False)
    return out.clamp(0, 1)


def sample_photo(size: int = 256) -> torch.Tensor:
    """Grace Hopper's portrait from matplotlib's sample data, centre-cropped square, ``(1, 3, size, size)``."""
    from matplotlib import cbook

    image = load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), size=size)
    h, w = image.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return image[..., top:top + size, left:left + size]


def painterly_texture(size: int = 256, seed: int = 0) -> torch.Tensor:
    """A swirly, brush-stroked 'painting' made procedurally, ``(1, 3, size, size)`` in ``[0, 1]``.

    Coarse noise is smeared along the streamlines of a smooth random flow (line-integral
    convolution), then coloured with a blue-and-gold palette. Drawn at 256 px (or ``size`` if
    larger) and resized, so the picture looks the same at every ``size``.
    """
    out_size, size = size, max(size, 256)
    gen = torch.Generator().manual_seed(seed)

    def smooth_field(cells: int) -> torch.Tensor:  # (size, size), smooth, zero mean, unit std
        f = F.interpolate(torch.randn(1, 1, cells, cells, generator=gen), size=(size, size),
                          mode="bicubic", align_corners=False)[0, 0]
        return (f - f.mean()) / f.std()

    angle = math.pi * smooth_field(4) + 0.6 * smooth_field(9)        # flow direction
    grain = max(1, size // 96)                                      # bristle width in pixels
    noise = F.interpolate(torch.rand(1, 1, size // grain, size // grain, generator=gen), size=(size, size),
                          mode="nearest")[0, 0]
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")
    length = max(4, size // 16)                                     # stroke half-length in pixels
    total = noise.clone()
    for sign in (1.0, -1.0):                                        # follow the flow both ways
        y, x = ys.clone(), xs.clone()
        for _ in range(length):
            a = angle[y.round().long() % size, x.round().long() % size]
            y, x = y + sign * torch.sin(a), x + sign * torch.cos(a)
            total += noise[y.round().long() % size, x.round().long() % size]
    strokes = total / (2 * length + 1)
    strokes = (strokes - strokes.mean()) / strokes.std()
    tone = torch.sigmoid(1.8 * smooth_field(5) + 0.7 * strokes)      # where gold vs blue
    palette = torch.tensor([[0.04, 0.08, 0.28], [0.12, 0.32, 0.68], [0.55, 0.72, 0.88], [0.98, 0.82, 0.22]])
    pos = tone * (len(palette) - 1)
    lo = pos.floor().long().clamp(max=len(palette) - 2)
    t = (pos - lo)[..., None]
    rgb = palette[lo] * (1 - t) + palette[lo + 1] * t               # (size, size, 3)
    rgb = rgb * (1 + 0.2 * strokes[..., None])
    image = rgb.clamp(0, 1).permute(2, 0, 1)[None].contiguous()
    return image if out_size == size else resize(image, out_size)


def to_numpy_image(image: torch.Tensor):
    """``(1, 3, H, W)`` or ``(3, H, W)`` tensor -> ``(H, W, 3)`` NumPy array for ``plt.imshow``."""
    image = image.detach().float().cpu()
    image = image[0] if image.dim() == 4 else image
    return image.clamp(0, 1).permute(1, 2, 0).numpy()


def show_images(images, titles=None, size: float = 3.0):
    """Show ``(1, 3, H, W)`` images in ``[0, 1]`` side by side; returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size), squeeze=False)
    for ax, image, title in zip(axes[0], images, titles or [None] * len(images)):
        ax.imshow(to_numpy_image(image))
        ax.set_axis_off()
        if title:
            ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
