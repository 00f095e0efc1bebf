"""Colour images: CIFAR-10, CelebA and any folder of images, offline-first like MNIST.

Every loader gives square images of ``image_size`` pixels: each image is centre-cropped to a
square (its shorter side) and resized (PIL, bilinear with antialiasing). ``channels=3`` gives RGB;
``channels=1`` grey-scale by ITU-R 601-2 luma (``L = 0.299 R + 0.587 G + 0.114 B``, PIL's ``"L"``).
Grey-scale, palette and transparent images are converted (transparent pixels are laid on white),
and the loader says so once.

Images are kept as **uint8** in an :class:`~gan_tutorial.data.ImageData` (4x smaller than float32:
CIFAR-10's 50,000 training images at 32 px take 154 MB instead of 614 MB); the trainer turns each
minibatch into floats in [-1, 1] on the device. For data too large for memory, ``stream=True``
gives an :class:`ImageFiles` dataset instead: the trainer then reads each batch from disk with a
DataLoader (workers, pinned memory on CUDA) in an order fixed by ``(seed, epoch)``, so a resumed
run sees exactly the batches an uninterrupted one would.

Data sets are looked for under ``root`` (default ``config.data_root()``, i.e. ``$GAN_TUTORIAL_DATA``)
and downloaded only with ``download=True`` (announced); otherwise ``DataNotFoundError`` says where
to put the files.
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from . import config
from .data import DataChecksumError, DataNotFoundError, ImageData, _shown, from_uint8

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
_UNREADABLE = (OSError, ValueError, SyntaxError)   # what PIL raises for broken or foreign files
_TRANSPARENT = ("RGBA", "LA", "PA")


# --------------------------------------------------------------------------- one image
def _check_args(image_size, channels) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 3 (colour) or 1 (grey-scale), got {channels!r}")
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be a whole number of pixels >= 8 (e.g. 32 or 64), got {image_size!r}")


def prepare_image(img, image_size: int, channels: int = 3) -> np.ndarray:
    """A PIL image as uint8 ``(channels, image_size, image_size)``: converted, centre-cropped, resized."""
    from PIL import Image

    if img.mode in _TRANSPARENT or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img.alpha_composite(rgba)                     # transparent pixels become white
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")                      # palette, CMYK, 1-bit, ...
    target = _target_mode(channels)
    if img.mode != target:
        img = img.convert(target)                     # grey -> colour, or colour -> grey by luma
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))             # centre square
    if side != image_size:
        img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
    x = np.array(img, dtype=np.uint8)                               # a writable copy, (S, S) or (S, S, 3)
    return x[None] if x.ndim == 2 else np.ascontiguousarray(x.transpose(2, 0, 1))   # (C, S, S)


def _target_mode(channels: int) -> str:
    return "RGB" if channels == 3 else "L"


# --------------------------------------------------------------------------- files on disk
def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _image_paths(folder: Path) -> list[str]:
    """The image files directly in ``folder``, sorted, as strings (a str takes a third of a Path's memory)."""
    with os.scandir(folder) as entries:   # names and types in one pass: no stat per file on most systems
        return sorted(e.path for e in entries if e.is_file() and not e.name.startswith(".")
                      and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)


def _scan(folder: Path) -> tuple[list[str], list[int] | None, list[str] | None]:
    """The image files of a flat folder (no labels) or of class subfolders (labels, class names)."""
    if not folder.exists():
        raise DataNotFoundError(f"There is no folder {folder}. Fix: check the path (a folder of images, or of "
                                "class subfolders of images), or create it and put images in it.")
    if not folder.is_dir():
        raise DataNotFoundError(f"{folder} is a file, not a folder. Fix: pass the folder that holds the images.")
    top = _image_paths(folder)
    if top:
        return top, None, None
    files, labels, classes = [], [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found = [str(p) for p in sorted(p for p in sub.rglob("*") if _is_image(p))]
        if found:
            files += found
            labels += [len(classes)] * len(found)
            classes.append(sub.name)
    if not files:
        raise DataNotFoundError(
            f"{folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)}), neither directly nor in "
            "subfolders. Fix: put images in it (or one subfolder of images per class), or pass another folder.")
    return files, labels, classes


class ImageFiles(torch.utils.data.Dataset):
    """Image files read from disk when asked for: item ``i`` is ``(uint8 (C, S, S), label)``, label -1
    when the folder has no classes. The trainer reads it in batches with a DataLoader of
    ``num_workers`` processes (default: up to 4) and resumes its order exactly.

    A file that cannot be read stops training with its name (``load_image_folder`` skips such files).
    """

    def __init__(self, files, labels=None, image_size: int = 64, channels: int = 3, classes=None,
                 source: str = "", num_workers: int | None = None):
        _check_args(image_size, channels)
        self.files = [os.fspath(f) for f in files]   # strings: 200,000 Paths would take 65 MB
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
        self.image_size, self.channels, self.classes, self.source = image_size, channels, classes, source
        self.num_workers = min(4, max(0, (os.cpu_count() or 1) - 1)) if num_workers is None else num_workers

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int):
        """``(uint8 array (C, S, S), original PIL mode, original size)``; PIL's error if unreadable."""
        from PIL import Image

        with Image.open(self.files[i]) as img:
            mode, size = img.mode, img.size
            if mode in _TRANSPARENT or "transparency" in img.info:
                mode += " with transparency"
            return prepare_image(img, self.image_size, self.channels), mode, size

    def __getitem__(self, i: int):
        try:
            x = self.read(i)[0]
        except _UNREADABLE as e:
            raise OSError(f"cannot read {self.files[i]} as an image ({type(e).__name__}: {e}). Fix: delete or "
                          "replace it (load_image_folder on the folder lists how many files are unreadable).") from e
        return torch.from_numpy(x), (-1 if self.labels is None else int(self.labels[i]))

    def __repr__(self) -> str:
        return f"ImageFiles({len(self)} files, {self.channels}x{self.image_size}x{self.image_size}: {self.source})"


class _Reader(torch.utils.data.Dataset):
    """Item i: ``ImageFiles.read(i)``, or a message saying why it failed (for loading into memory)."""

    def __init__(self, ds: ImageFiles):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        try:
            return self.ds.read(i)
        except _UNREADABLE as e:
            return f"{os.path.basename(self.ds.files[i])}: {type(e).__name__}: {e}"


def _read_all(ds: ImageFiles, verbose: bool) -> ImageData:
    """Read every file of ``ds`` into one uint8 tensor, skipping (and counting) unreadable files."""
    n, c, s = len(ds), ds.channels, ds.image_size
    images = torch.empty((n, c, s, s), dtype=torch.uint8)
    kept, bad, modes, sizes = [], [], Counter(), set()
    loader = torch.utils.data.DataLoader(_Reader(ds), batch_size=256, collate_fn=list,
                                         num_workers=ds.num_workers if n > 1000 else 0)  # workers pay off on big folders
    if verbose and n > 5000:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc=f"reading {n:,} images", unit="batch", leave=False)
    i = 0
    for batch in loader:
        for item in batch:
            if isinstance(item, str):
                bad.append(item)
            else:
                images[len(kept)] = torch.from_numpy(item[0])
                modes[item[1]] += 1
                sizes.add(item[2])
                kept.append(i)
            i += 1
    folder = _shown(Path(ds.files[0]).parent) if n else "the folder"
    if not kept:
        raise DataNotFoundError(f"None of the {n} image files in {folder} could be read ({bad[0]}). Fix: check "
                                "that they are images PIL can open (PNG, JPEG, ...), or pass another folder.")
    if bad:
        warnings.warn(f"Skipped {len(bad)} of {n} files that could not be read as images (first: {bad[0]}). "
                      "Fix: delete or replace them to silence this.", stacklevel=3)
    target = _target_mode(c)
    converted = {m: k for m, k in modes.items() if m != target}
    if verbose and converted:
        what = ", ".join(f"{k} {m}" for m, k in sorted(converted.items()))
        print(f"Converted {sum(converted.values())} of {len(kept)} images to {target} ({what}"
              + ("; transparent pixels laid on white" if any("transparen" in m for m in converted) else "") + ").")
    if verbose and len(sizes) > 1:
        (w0, h0), (w1, h1) = (f(sizes, key=lambda wh: wh[0] * wh[1]) for f in (min, max))
        print(f"Image sizes differ ({len(sizes)} sizes, {w0}x{h0} to {w1}x{h1}): each was centre-cropped to a "
              f"square and resized to {s}x{s}.")
    labels = None if ds.labels is None else ds.labels[kept]
    return ImageData(images[: len(kept)], labels, ds.source, ds.classes)


def load_image_folder(path, image_size: int = 64, channels: int = 3, *, limit: int | None = None,
                      stream: bool = False, num_workers: int | None = None, device=None, verbose: bool = True,
                      name: str | None = None):
    """Images from a folder, as uint8 ``(N, channels, image_size, image_size)`` in an ``ImageData``.

    ``path`` holds image files (no labels), or one subfolder of images per class (labels are the
    subfolders' positions in sorted order, ``data.classes`` their names, as torchvision's ImageFolder).
    Unreadable files are skipped with a warning giving their count. ``limit`` keeps the first
    ``limit`` files (sorted by path). ``stream=True`` returns an :class:`ImageFiles` dataset read from
    disk during training instead (for folders too large for memory); ``num_workers`` are the
    processes reading the files (0: this one; None: up to 4, one fewer than the CPU cores).
    """
    _check_args(image_size, channels)
    folder = Path(path).expanduser()
    files, labels, classes = _scan(folder)
    if limit is not None:
        files, labels = files[:limit], None if labels is None else labels[:limit]
    what = f"{len(classes)} classes" if classes else "no labels"
    ds = ImageFiles(files, labels, image_size, channels, classes, "", num_workers)

    def source(n):
        return f"{name or 'image folder ' + _shown(folder)}, {n:,} images ({what}), {image_size} px"

    if stream:
        ds.source = source(len(ds))
        if verbose:
            print(f"Streaming {ds.source} from disk (each image centre-cropped and resized when read).")
        return ds
    data = _read_all(ds, verbose)
    data.source = source(len(data))
    if verbose:
        print(f"Loaded {data.source}: {data.images.nbytes / 1e6:.1f} MB as uint8.")
    return data.to(device) if device is not None else data


# --------------------------------------------------------------------------- CIFAR-10
def _cifar_how_to(root: Path) -> str:
    return (f"CIFAR-10 was not found under {root} (looked for {root / 'cifar-10-batches-py'} and "
            f"{root / 'cifar10' / 'cifar-10-batches-py'}).\n"
            "Fix it one of these ways:\n"
            "  * online: load_cifar10(download=True) (or --download on the command line; 163 MB);\n"
            "  * offline: unpack cifar-10-python.tar.gz so that the folder cifar-10-batches-py/ (data_batch_1 ...\n"
            "    test_batch) is in DIR, and set GAN_TUTORIAL_DATA=DIR (or pass root=DIR).")


def load_cifar10(root=None, split: str = "train", *, download: bool = False, image_size: int = 32,
                 channels: int = 3, limit: int | None = None, device=None, verbose: bool = True) -> ImageData:
    """CIFAR-10 as uint8 ``(N, channels, image_size, image_size)`` with labels 0-9 (``data.classes``).

    ``split``: ``"train"`` (50,000 images, default) or ``"test"`` (10,000). Read with
    torchvision from ``root/cifar-10-batches-py`` (which checks the files' checksums); downloaded
    there only with ``download=True``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' (50,000 images) or 'test' (10,000), got {split!r}")
    _check_args(image_size, channels)
    root = Path(root).expanduser() if root is not None else config.data_root()
    found = next((r for r in (root, root / "cifar10") if (r / "cifar-10-batches-py").is_dir()), None)
    try:
        from torchvision.datasets import CIFAR10
    except ImportError as e:  # pragma: no cover
        raise DataNotFoundError("torchvision is needed to read CIFAR-10: pip install torchvision") from e
    if found is None and not download:
        raise DataNotFoundError(_cifar_how_to(root))
    if found is None:
        if verbose:
            print(f"Downloading CIFAR-10 with torchvision (163 MB) into {_shown(root)} ...")
        try:
            root.mkdir(parents=True, exist_ok=True)
            ds = CIFAR10(str(root), train=split == "train", download=True)
        except Exception as e:  # network errors come in many types
            raise DataNotFoundError(f"Downloading CIFAR-10 failed ({type(e).__name__}: {e}).\n" + _cifar_how_to(root)) from e
        found = root
    else:
        try:
            ds = CIFAR10(str(found), train=split == "train", download=False)
        except RuntimeError as e:  # torchvision: "Dataset not found or corrupted."
            raise DataChecksumError(
                f"{found / 'cifar-10-batches-py'} is incomplete or damaged ({e}). Fix: delete it and load again with "
                "download=True, or unpack a good copy of cifar-10-python.tar.gz there.") from e
    pixels, labels = np.asarray(ds.data), torch.as_tensor(ds.targets, dtype=torch.long)   # (N, 32, 32, 3) uint8
    if limit is not None:
        pixels, labels = pixels[:limit], labels[:limit]
    if image_size == 32 and channels == 3:
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    else:
        from PIL import Image

        images = torch.from_numpy(np.stack([prepare_image(Image.fromarray(p), image_size, channels) for p in pixels]))
    source = f"CIFAR-10 {split} split, {len(labels):,} images, {image_size} px, from {_shown(found / 'cifar-10-batches-py')}"
    if verbose:
        print(f"Loaded {source}: {images.nbytes / 1e6:.1f} MB as uint8.")
    data = ImageData(images, labels, source, list(ds.classes))
    return data.to(device) if device is not None else data


# --------------------------------------------------------------------------- CelebA
def _celeba_how_to(root: Path, why: str = "") -> str:
    return ((why or f"CelebA was not found under {root} (looked for {root / 'celeba' / 'img_align_celeba'}).") + "\n"
            "Fix it one of these ways:\n"
            f"  * by hand (Google Drive often refuses torchvision's download with a quota error): download\n"
            f"    img_align_celeba.zip ('Align&Cropped Images') from {CELEBA_URL}, unzip it so the\n"
            "    JPEGs are in DIR/celeba/img_align_celeba/, and set GAN_TUTORIAL_DATA=DIR (or pass root=DIR);\n"
            "  * or load any folder of face images with load_image_folder(PATH) (--dataset folder:PATH);\n"
            "  * online: load_celeba(download=True) (or --download; 1.4 GB through torchvision and gdown).")


def _celeba_folder(root: Path) -> Path | None:
    for folder in (root / "celeba" / "img_align_celeba", root / "img_align_celeba"):
        inner = folder / "img_align_celeba"        # some unzip tools add one more level
        for f in (inner, folder):
            if f.is_dir() and any(_is_image(p) for p in f.iterdir()):
                return f
    return None


def load_celeba(root=None, image_size: int = 64, *, channels: int = 3, download: bool = False,
                limit: int | None = None, stream: bool = False, num_workers: int | None = None, device=None,
                verbose: bool = True):
    """CelebA's aligned faces (all 202,599, no labels): 178 x 218 JPEGs, centre-cropped to 178 x 178 and
    resized to ``image_size``. uint8 in memory: 2.5 GB at 64 px (``limit`` takes fewer; ``stream=True``
    reads from disk instead, see :func:`load_image_folder`).

    Read from ``root/celeba/img_align_celeba/``; downloaded there through torchvision only with
    ``download=True`` (Google Drive often refuses it: the error then says how to get the files by hand).
    """
    _check_args(image_size, channels)
    root = Path(root).expanduser() if root is not None else config.data_root()
    folder = _celeba_folder(root)
    if folder is None and download:
        _download_celeba(root, verbose)
        folder = _celeba_folder(root)
    if folder is None:
        raise DataNotFoundError(_celeba_how_to(root))
    return load_image_folder(folder, image_size, channels, limit=limit, stream=stream, num_workers=num_workers,
                             device=device, verbose=verbose, name=f"CelebA (aligned) from {_shown(folder)}")


def _download_celeba(root: Path, verbose: bool) -> None:
    try:
        from torchvision.datasets import CelebA
    except ImportError as e:  # pragma: no cover
        raise DataNotFoundError("torchvision is needed to download CelebA: pip install torchvision") from e
    if verbose:
        print(f"Downloading CelebA with torchvision (1.4 GB of images and annotations from Google Drive) "
              f"into {_shown(root / 'celeba')} ...")
    try:
        root.mkdir(parents=True, exist_ok=True)
        CelebA(str(root), split="all", target_type=[], download=True)
    except Exception as e:  # quota errors, missing gdown, network errors, bad checksums
        raise DataNotFoundError(_celeba_how_to(root, f"Downloading CelebA failed ({type(e).__name__}: "
                                                     f"{str(e)[:200]}).")) from e


# --------------------------------------------------------------------------- streamed batches
class EpochSampler(torch.utils.data.Sampler):
    """Epoch ``e`` visits every item once in an order fixed by ``(seed, e)``, from position ``start``."""

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch, self.start = n, seed, 0, 0

    def order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed % 2**64, epoch]).permutation(self.n)

    def __iter__(self):
        return iter(self.order(self.epoch)[self.start:].tolist())

    def __len__(self) -> int:
        return self.n - self.start


class StreamBatches:
    """Endless minibatches of an :class:`ImageFiles` read by a DataLoader, converted to [-1, 1] on the device.

    The order of epoch ``e`` depends only on ``(seed, e)`` and the state holds the epoch and the
    position in it, so a resumed run reads exactly the batches an uninterrupted run would. Batches
    are full: the last ``len % batch_size`` items of each epoch's order are left out.
    """

    def __init__(self, files: ImageFiles, conditional: bool, batch_size: int, device, seed: int):
        if batch_size > len(files):
            raise ValueError(f"batch_size={batch_size} is larger than the dataset ({len(files)} images); lower it.")
        if conditional and files.labels is None:
            raise ValueError("the generator is conditional, but these images have no labels: put them in one "
                             "subfolder per class, or train an unconditional model.")
        self.files, self.conditional, self.batch_size = files, conditional, batch_size
        self.device = torch.device(device)
        self.sampler = EpochSampler(len(files), seed)
        workers = files.num_workers
        self.loader = torch.utils.data.DataLoader(
            files, batch_size=batch_size, sampler=self.sampler, drop_last=True, num_workers=workers,
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0)
        self.iterator, self.epoch, self.pos = None, 0, 0

    def __len__(self) -> int:
        return len(self.files) // self.batch_size

    def _restart(self):
        self.sampler.epoch, self.sampler.start = self.epoch, self.pos
        self.iterator = iter(self.loader)

    def next(self):
        if self.iterator is None:
            self._restart()
        try:
            images, labels = next(self.iterator)
        except StopIteration:
            self.epoch, self.pos = self.epoch + 1, 0
            self._restart()
            images, labels = next(self.iterator)
        self.pos += self.batch_size
        x = from_uint8(images.to(self.device, non_blocking=True))
        return (x, labels.to(self.device, non_blocking=True)) if self.conditional else (x,)

    def state_dict(self) -> dict:
        return {"seed": self.sampler.seed, "epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        if "seed" not in state:
            raise ValueError("this checkpoint was trained on data held in memory, not streamed from files: "
                             "resume it with the same data (without stream=True / --stream).")
        self.sampler.seed, self.epoch, self.pos = state["seed"], state["epoch"], state["pos"]
        self.iterator = None


__all__ = ["load_image_folder", "load_cifar10", "load_celeba", "ImageFiles", "prepare_image", "EpochSampler",
           "StreamBatches", "IMAGE_EXTENSIONS"]
