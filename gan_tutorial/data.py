"""Data: toy Gaussian mixtures (1-D and 2-D) and MNIST with an offline-first loader (colour images:
:mod:`gan_tutorial.images`).

Which MNIST: every notebook trains on the same images on every machine, MNIST's official *test*
split (10,000 digits, ``split="test"``, the default). It is what the offline copy holds, and
torchvision can download it anywhere. The 60,000-image training split is used only when asked
for (``split="train"``).

MNIST is looked for, in order, under ``root`` (default ``config.data_root()``):

1. idx files in ``root/mnist/`` (``t10k-*`` or ``train-*``, ``.gz`` or unpacked) -- the layout of
   the tutorial's offline copy;
2. torchvision's layout ``root/MNIST/raw/``;
3. a download through torchvision, only when ``download=True`` (announced before it starts);
4. a stand-in made of rendered digits, only when ``allow_standin=True`` (announced loudly).

Otherwise a ``DataNotFoundError`` explains how to get the files. Every file read is checked
against its published MD5 checksum (``MNIST_MD5``) before use; a mismatch raises
``DataChecksumError`` with the fix. A download goes to a temporary folder first and is moved into
place only when its checksums are right, so a broken download never takes a good file's place.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import struct
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import config


# --------------------------------------------------------------------------- toy mixtures
class Mixture:
    """An isotropic Gaussian mixture in ``dim`` dimensions.

    Args:
        means: ``(K, dim)`` component centres.
        stds: ``(K,)`` standard deviations (one per component, same on every axis).
        weights: ``(K,)`` mixing weights (normalised here); equal when ``None``.
    """

    def __init__(self, means, stds, weights=None):
        self.means = torch.as_tensor(means, dtype=torch.float32)
        if self.means.dim() == 1:
            self.means = self.means[:, None]
        k = self.means.shape[0]
        self.stds = torch.as_tensor(stds, dtype=torch.float32).expand(k).clone()
        w = torch.ones(k) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        if w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {k} non-negative numbers with a positive sum, got {w.tolist()}")
        self.weights = w / w.sum()

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]

    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Draw ``n`` points, shape ``(n, dim)``."""
        gen_device = generator.device if generator is not None else torch.device("cpu")
        idx = torch.multinomial(self.weights.to(gen_device), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, device=gen_device)
        x = self.means.to(gen_device)[idx] + noise * self.stds.to(gen_device)[idx, None]
        return x if device is None else x.to(device)

    __call__ = sample

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log density at points ``x`` of shape ``(n, dim)`` (or ``(n,)`` when dim is 1)."""
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() == 1:
            x = x[:, None]
        m, s = self.means.to(x.device), self.stds.to(x.device)
        d2 = ((x[:, None, :] - m[None]) ** 2).sum(-1)  # (n, K)
        log_norm = -self.dim * (torch.log(s) + 0.5 * math.log(2 * math.pi))
        comp = log_norm - 0.5 * d2 / s**2 + torch.log(self.weights.to(x.device))
        return torch.logsumexp(comp, dim=1)

    def pdf(self, x: torch.Tensor) -> torch.Tensor:
        """Density at ``x``."""
        return self.log_prob(x).exp()

    def __repr__(self) -> str:
        return f"Mixture(num_modes={self.num_modes}, dim={self.dim})"


def gaussian_1d(mean: float = 4.0, std: float = 0.5) -> Mixture:
    """A single 1-D Gaussian N(mean, std^2)."""
    return Mixture([[mean]], [std])


def mixture_1d(means=(-2.0, 2.0), stds=0.5, weights=None) -> Mixture:
    """A 1-D Gaussian mixture."""
    means = torch.as_tensor(means, dtype=torch.float32)[:, None]
    return Mixture(means, stds, weights)


def ring_2d(num_modes: int = 8, radius: float = 2.0, std: float = 0.02) -> Mixture:
    """``num_modes`` Gaussians evenly spaced on a circle (the classic mode-collapse test)."""
    angles = torch.arange(num_modes) * (2 * math.pi / num_modes)
    means = torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], dim=1)
    return Mixture(means, std)


def grid_2d(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture:
    """A ``side x side`` grid of Gaussians centred on the origin (25 modes by default)."""
    ticks = (torch.arange(side) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return Mixture(torch.stack([gx.flatten(), gy.flatten()], dim=1), std)


# --------------------------------------------------------------------------- MNIST
class DataNotFoundError(FileNotFoundError):
    """Raised when a dataset is neither on disk nor downloadable; the message says how to get it."""


class DataChecksumError(ValueError):
    """Raised when a data file does not match its published checksum; the message names the fix."""


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """Pixels 0..255 (uint8) as float32 in [-1, 1]: ``x / 127.5 - 1`` (0 -> -1, 255 -> 1)."""
    return images.float().div(127.5).sub(1.0)


@dataclass
class ImageData:
    """Images ``(N, C, H, W)``, integer labels ``(N,)`` (None when there are none) and where they came from.

    ``images`` are float32 in [-1, 1] (MNIST), or uint8 pixels 0..255 (the colour data sets of
    :mod:`gan_tutorial.images`: 4x smaller). The trainer turns each uint8 minibatch into floats in
    [-1, 1] when it draws it, on the device; :meth:`float` converts everything at once.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    source: str
    classes: list | None = None     # class names, label i is classes[i] (image folders with class subfolders)

    def __len__(self) -> int:
        return self.images.shape[0]

    def _with(self, images, labels) -> "ImageData":
        return ImageData(images, labels, self.source, self.classes)

    def to(self, device) -> "ImageData":
        return self._with(self.images.to(device), None if self.labels is None else self.labels.to(device))

    def subset(self, index) -> "ImageData":
        return self._with(self.images[index], None if self.labels is None else self.labels[index])

    def float(self) -> "ImageData":
        """The same data with float32 images in [-1, 1] (itself when they already are)."""
        return self._with(from_uint8(self.images), self.labels) if self.images.dtype == torch.uint8 else self

    def split(self, num_holdout: int, seed: int = 0) -> tuple["ImageData", "ImageData"]:
        """Shuffle once (seeded) and return ``(rest, holdout)`` with ``num_holdout`` images held out."""
        if not 0 < num_holdout < len(self):
            raise ValueError(f"num_holdout must be between 1 and {len(self) - 1}, got {num_holdout}")
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed)).to(self.images.device)
        return self.subset(perm[num_holdout:]), self.subset(perm[:num_holdout])


_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_MNIST_SIZES = {"train": 60000, "test": 10000}

# MD5 of the files as published (the .gz files, as listed by torchvision and the MNIST page) and, for
# the test split, of the unpacked files (measured from the verified .gz files). No checksum of the
# unpacked training files is published: those are checked when their .gz is beside them.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def _checksum_error(path: Path, got: str, want: str) -> DataChecksumError:
    return DataChecksumError(
        f"{path.name} (in {_shown(path.parent)}) does not match the published MNIST checksum (md5 {got}, expected "
        f"{want}): the file is damaged or is not MNIST.\nFix: delete it and load again with download=True, or "
        "copy a good copy of the file in its place. For another dataset stored in MNIST's file format "
        "(e.g. Fashion-MNIST) pass verify=False.")


def read_idx(path: str | Path, verify: bool = False) -> torch.Tensor:
    """Read an idx file (plain or gzipped) into a uint8 tensor; ``verify=True`` checks ``MNIST_MD5`` first."""
    path = Path(path)
    raw = path.read_bytes()
    if verify and path.name in MNIST_MD5:
        got = hashlib.md5(raw).hexdigest()
        if got != MNIST_MD5[path.name]:
            raise _checksum_error(path, got, MNIST_MD5[path.name])
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path} is not a complete gzip file ({e}); re-download it.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file (bad magic number); re-download it.")
    ndim = raw[3]
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    expected = math.prod(shape)
    body = raw[4 + 4 * ndim :]
    if len(body) != expected:
        raise ValueError(f"{path} is truncated ({len(body)} of {expected} bytes); re-download it.")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):  # the .gz first: its published checksum is the one to check
        if (folder / name).is_file():
            return folder / name
    return None


def _locate(root: Path, split: str) -> tuple[Path, Path] | None:
    img_stem, lab_stem = _MNIST_FILES[split]
    for folder in (root / "mnist", root / "MNIST" / "raw", root):
        img, lab = _find(folder, img_stem), _find(folder, lab_stem)
        if img and lab:
            return img, lab
    return None


def _shown(folder: Path) -> str:
    """A folder as people should read it: relative to $GAN_TUTORIAL_DATA or ~, not a machine path."""
    env = os.environ.get("GAN_TUTORIAL_DATA")
    for base, name in ((env, "$GAN_TUTORIAL_DATA"), (str(Path.home()), "~")):
        if base:
            try:
                return str(Path(name) / Path(folder).resolve().relative_to(Path(base).expanduser().resolve()))
            except ValueError:
                pass
    return Path(folder).name + "/"


def _how_to_get(root: Path, split: str = "test") -> str:
    img, lab = _MNIST_FILES[split]
    return (
        f"MNIST ({split} split) was not found under {root} (looked in {root / 'mnist'} and "
        f"{root / 'MNIST' / 'raw'}).\n"
        "Fix it one of these ways:\n"
        "  * online: call load_mnist(download=True) (or pass --download on the command line);\n"
        f"  * offline: copy the idx files {img}.gz and {lab}.gz into a folder DIR/mnist/ and\n"
        "    set GAN_TUTORIAL_DATA=DIR;\n"
        "  * to just try the code: load_mnist(allow_standin=True) uses rendered digits instead."
    )


def _resize(images: torch.Tensor, image_size: int) -> torch.Tensor:
    if image_size == images.shape[-1]:
        return images
    if image_size == 32 and images.shape[-1] == 28:  # pad like LeNet: keeps strokes sharp
        return F.pad(images, (2, 2, 2, 2), value=-1.0)
    if image_size < 8:
        raise ValueError(f"image_size={image_size} is too small; use 28, 32 or 64.")
    return F.interpolate(images, size=(image_size, image_size), mode="bilinear", antialias=True,
                         align_corners=False).clamp(-1, 1)


def load_mnist(root: str | Path | None = None, split: str = "test", *, download: bool = False,
               allow_standin: bool = False, image_size: int = 28, limit: int | None = None,
               device=None, verbose: bool = True, verify: bool = True) -> ImageData:
    """Load MNIST as tensors in [-1, 1], shape ``(N, 1, image_size, image_size)``.

    ``split``: ``"test"`` (default: the 10,000 images every notebook trains on, on every machine)
    or ``"train"`` (the 60,000-image training split). ``limit`` keeps the first ``limit`` images.
    ``verify`` checks each file against its published checksum first (``DataChecksumError`` on a
    mismatch); turn it off only for another dataset stored in MNIST's file format.
    """
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' (10,000 images, what the notebooks use) or 'train' "
                         f"(60,000 images), got {split!r}")
    root = Path(root).expanduser() if root is not None else config.data_root()
    found = _locate(root, split)
    if found is None and download:
        found = _download(root, split, verbose)
    if found is None:
        if allow_standin:
            data = standin_digits(limit or 10000, image_size=image_size)
            return data.to(device) if device is not None else data
        raise DataNotFoundError(_how_to_get(root, split))
    img_path, lab_path = found
    images, labels = read_idx(img_path, verify=verify), read_idx(lab_path, verify=verify).long()
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{img_path} and {lab_path} hold different numbers of items; re-download them.")
    if verify and images.shape[0] != _MNIST_SIZES[split]:
        raise DataChecksumError(f"{img_path.name} holds {images.shape[0]} images, not the {_MNIST_SIZES[split]:,} "
                                f"of MNIST's {split} split. Fix: replace it with the published file "
                                "(load with download=True), or pass verify=False for other data in this format.")
    checked = verify and all(p.name in MNIST_MD5 for p in found)
    if verify and not checked and verbose:
        print(f"Note: {img_path.name} and {lab_path.name} have no published checksum (unpacked training files); "
              "keep the .gz files beside them to have them checked.")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = from_uint8(images)[:, None]  # (N, 1, 28, 28) in [-1, 1]
    x = _resize(x, image_size)
    source = f"MNIST {split} split, {len(labels)} images, from {_shown(img_path.parent)}"
    if verbose:
        print(f"Loaded {source}" + (" (checksums verified)" if checked else ""))
    data = ImageData(x, labels, source)
    return data.to(device) if device is not None else data


def _download(root: Path, split: str, verbose: bool):
    """Download MNIST with torchvision into a temporary folder under ``root``, check every file's
    checksum, then move the files into ``root/MNIST/raw``; nothing is left behind on failure."""
    try:
        from torchvision.datasets import MNIST
    except ImportError as e:  # pragma: no cover
        raise DataNotFoundError("torchvision is needed to download MNIST: pip install torchvision") from e
    if verbose:
        print(f"Downloading MNIST with torchvision (four files, about 12 MB; the {split} split is used) "
              f"into {_shown(root / 'MNIST' / 'raw')} ...")
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".mnist-download-", dir=root))
    except OSError as e:
        raise DataNotFoundError(f"Cannot write to {root} ({type(e).__name__}: {e}). Fix: set GAN_TUTORIAL_DATA "
                                "to a folder you can write to, or pass root=...") from e
    try:
        try:
            MNIST(str(tmp), train=(split == "train"), download=True)
        except Exception as e:  # network errors and torchvision's own checksum failure come in many types
            raise DataNotFoundError(f"Downloading MNIST failed ({type(e).__name__}: {e}); nothing was kept.\n"
                                    + _how_to_get(root, split)) from e
        fetched = tmp / "MNIST" / "raw"
        files = sorted(fetched.iterdir()) if fetched.is_dir() else []
        for path in files:
            want = MNIST_MD5.get(path.name)
            got = hashlib.md5(path.read_bytes()).hexdigest() if want else None
            if got != want:
                img, lab = _MNIST_FILES[split]
                raise DataChecksumError(
                    f"The downloaded {path.name} is corrupted (md5 {got}, expected {want}); the download was "
                    "deleted and nothing was kept.\nFix: run again to download it afresh. If it keeps failing, "
                    f"copy {img}.gz and {lab}.gz from another source into a folder DIR/mnist/ and set "
                    "GAN_TUTORIAL_DATA=DIR (their checksums are checked when loaded).")
        target = root / "MNIST" / "raw"
        target.mkdir(parents=True, exist_ok=True)
        for path in files:
            os.replace(path, target / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _locate(root, split)


def standin_digits(n: int = 10000, image_size: int = 28, seed: int = 0) -> ImageData:
    """Rendered digits 0-9 with random shifts, scales and stroke widths: a stand-in for MNIST.

    Announced with a warning every time, because results on it are not MNIST results.
    """
    msg = ("USING A STAND-IN FOR MNIST: rendered font digits, not handwriting. Results and numbers "
           "below are not MNIST results. Get the real data with load_mnist(download=True).")
    warnings.warn(msg, stacklevel=2)
    print("*" * 80 + "\n" + msg + "\n" + "*" * 80)
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    templates = []
    for digit in range(10):  # one 56x56 template per digit, rendered once
        fig = Figure(figsize=(1, 1), dpi=56)
        canvas = FigureCanvasAgg(fig)
        fig.text(0.5, 0.5, str(digit), ha="center", va="center", fontsize=44, color="white", weight="bold")
        fig.patch.set_facecolor("black")
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())[..., 0].astype("float32") / 255.0
        templates.append(torch.from_numpy(rgba.copy()))
    templates = torch.stack(templates)[:, None]  # (10, 1, 56, 56)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    scale = 1 + 0.15 * torch.randn(n, generator=g)
    rot = 0.15 * torch.randn(n, generator=g)
    shift = 0.08 * torch.randn(n, 2, generator=g)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = torch.cos(rot) * scale
    theta[:, 0, 1] = -torch.sin(rot) * scale
    theta[:, 1, 0] = torch.sin(rot) * scale
    theta[:, 1, 1] = torch.cos(rot) * scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, (n, 1, image_size, image_size), align_corners=False)
    x = F.grid_sample(templates[labels], grid, align_corners=False)
    return ImageData(x.clamp(0, 1) * 2 - 1, labels, "stand-in rendered digits (NOT MNIST)")


# --------------------------------------------------------------------------- batches
class TensorBatches:
    """Endless shuffled minibatches from tensors kept on one device (no DataLoader, no host sync).

    Each pass over the data is a fresh permutation drawn from ``generator``; the permutation and
    position are part of ``state_dict()`` so a resumed run sees the same batches.

    Several processes (``world_size > 1``): every rank draws the same permutation (give each the same
    seed) and takes every ``world_size``-th item of it from position ``rank``, so the ranks' shards
    are disjoint and together make the epoch (the last ``len % world_size`` items are left out).
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, generator: torch.Generator, rank: int = 0,
                 world_size: int = 1):
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError("all tensors must have the same first dimension")
        if world_size > 1 and batch_size * world_size > n:
            raise ValueError(f"batch_size={batch_size} per process x {world_size} processes needs at least "
                             f"{batch_size * world_size} items, but the dataset has {n}: lower the batch size "
                             "or start fewer processes.")
        if batch_size > n:
            raise ValueError(f"batch_size={batch_size} is larger than the dataset ({n} items); lower it.")
        self.tensors, self.batch_size, self.generator = tensors, batch_size, generator
        self.rank, self.world_size = rank, world_size
        self.perm, self.pos, self.epoch = None, 0, 0

    def __len__(self) -> int:
        return self.tensors[0].shape[0] // self.world_size // self.batch_size

    def next(self):
        n = self.tensors[0].shape[0]
        if self.perm is None or self.pos + self.batch_size > n // self.world_size:  # this rank's share is used
            if self.perm is not None:
                self.epoch += 1
            self.perm = torch.randperm(n, generator=self.generator, device=self.generator.device)
            self.perm = self.perm.to(self.tensors[0].device)
            self.pos = 0
        idx = self.perm[self.rank :: self.world_size][self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return tuple(t[idx] for t in self.tensors)

    def state_dict(self) -> dict:
        return {"perm": None if self.perm is None else self.perm.cpu(), "pos": self.pos, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.perm = None if state["perm"] is None else state["perm"].to(self.tensors[0].device)
        self.pos, self.epoch = state["pos"], state["epoch"]


class ByteBatches(TensorBatches):
    """:class:`TensorBatches` whose first tensor holds uint8 images: each batch is converted to
    float32 in [-1, 1] when drawn (on the tensors' device), so only the batch is ever float."""

    def next(self):
        images, *rest = super().next()
        return (from_uint8(images), *rest)
