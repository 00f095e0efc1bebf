"""A small MNIST classifier used as the *measuring stick* of the image metrics.

Inception-based FID needs a big pretrained network and colour photos; for handwritten digits a
small CNN trained on MNIST itself does the same job: its penultimate layer (128 numbers per
image) summarises what a digit looks like, and its predictions tell which digit a sample shows.
:mod:`gan_tutorial.metrics` builds the classifier-feature FID, class histograms and label
accuracy on top of it.

One network everywhere: :func:`get_classifier` loads the weights committed with the package
(``gan_tutorial/weights/mnist_classifier.pt``, float16, checked against the sha256 in
``weights/manifest.json``, loaded with ``weights_only=True``), so a classifier-FID means the same
measurement on every machine. They are made by ``python -m gan_tutorial.classifier --retrain``
(600 minibatches of 128 images on one CPU thread, seed 0), which rewrites the file and its
manifest together, with the held-out accuracy measured with the stored weights.
``python -m gan_tutorial.classifier`` checks them: hash, and accuracy when MNIST is available.

Data and honesty about it: the classifier uses ``load_mnist()`` -- the 10,000-image *test* split,
the one every notebook trains its GANs on -- holds out ``HOLDOUT = 2000`` images with
``split(2000, seed=0)`` and trains on the rest. So the classifier has seen most images a GAN
learned from. That is fine for a metric (it only has to recognise digits well); its accuracy is
always measured on the held-out images, which it never saw. Use :func:`mnist_splits` to get the
same split in a notebook.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import config
from .data import ImageData, load_mnist

HOLDOUT = 2000                                   # images held out to measure the classifier
SPLIT_SEED = 0                                   # seed of ImageData.split for that hold-out
CACHE_NAME = "mnist_classifier.pt"               # file name for a classifier of your own (get_classifier(path=...))
CACHE_FORMAT = "gan_tutorial-mnist-classifier-v1"
TRAIN_STEPS = 600                                # minibatches of 128: ~10 passes over 8,000 images
WEIGHTS = Path(__file__).resolve().parent / "weights" / "mnist_classifier.pt"   # the committed weights
MANIFEST = WEIGHTS.with_name("manifest.json")    # their sha256 and measured held-out accuracy
RETRAIN = "python -m gan_tutorial.classifier --retrain"

_LOADED: dict = {}                               # (path, device, mtime) -> classifier, so repeated calls are free


class WeightsMismatchError(ValueError):
    """The committed classifier file does not match the sha256 in its manifest (the message has the fix)."""


class MNISTClassifier(nn.Module):
    """LeNet-style CNN for ``(N, 1, 28, 28)`` digits in [-1, 1]: ``forward`` gives logits ``(N, 10)``.

    ``features(x)`` returns the penultimate activations ``(N, feature_dim)`` (128 by default),
    the space in which :func:`gan_tutorial.metrics.classifier_fid` compares image sets.

    Other image sizes are accepted and brought to 28 px first (see :meth:`prepare`): 32 px is
    centre-cropped (undoing the 2-px padding ``load_mnist(image_size=32)`` adds), any other size
    is resized with antialiased bilinear interpolation (e.g. 64 px). ``(N, 28, 28)`` is read as
    one channel. Images must be in [-1, 1], like everything the package makes.
    """

    def __init__(self, width: int = 8, feature_dim: int = 128, num_classes: int = 10, dropout: float = 0.25):
        super().__init__()
        self.hparams = dict(width=width, feature_dim=feature_dim, num_classes=num_classes, dropout=dropout)
        self.feature_dim, self.num_classes = feature_dim, num_classes
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),              # (N, w, 14, 14)
            nn.Conv2d(width, 2 * width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),      # (N, 2w, 7, 7)
            nn.Flatten(),                                                               # (N, 2w*49)
            nn.Linear(2 * width * 49, feature_dim), nn.ReLU(),                          # (N, feature_dim)
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))  # (N, 10)
        self.holdout_accuracy: float | None = None   # set by training or loading
        self.trained_on: str | None = None
        self.train_seconds: float = 0.0

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        """Bring images to ``(N, 1, 28, 28)`` float: crop 32 px, resize other sizes, add a channel axis."""
        x = torch.as_tensor(x)
        if x.dim() == 3:
            x = x[:, None]
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"expected grey-scale images of shape (N, 1, H, W) in [-1, 1], got {tuple(x.shape)}")
        x = x.float()
        h, w = x.shape[-2:]
        if (h, w) == (28, 28):
            return x
        if (h, w) == (32, 32):  # load_mnist(image_size=32) pads 28 px digits by 2 px: undo it exactly
            return x[..., 2:30, 2:30]
        if min(h, w) < 8:
            raise ValueError(f"images of {h}x{w} px are too small to classify; use 28, 32 or 64 px")
        return F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(N, feature_dim)`` (after the ReLU)."""
        x = self.prepare(x).to(next(self.parameters()).device)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, num_classes)``."""
        return self.head(self.features(x))

    @torch.no_grad()
    def _batched(self, fn, images: torch.Tensor, batch_size: int) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            outs = [fn(images[i : i + batch_size]).float().cpu() for i in range(0, images.shape[0], batch_size)]
        finally:
            self.train(was_training)
        if not outs:
            raise ValueError("got no images")
        return torch.cat(outs)

    def extract_features(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Features of many images, in eval mode and in batches; returns a CPU tensor ``(N, D)``."""
        return self._batched(self.features, images, batch_size)

    def logits(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Logits of many images, in eval mode and in batches; returns a CPU tensor ``(N, 10)``."""
        return self._batched(self.forward, images, batch_size)

    def predict(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Predicted digit for each image, a CPU ``long`` tensor ``(N,)``."""
        return self.logits(images, batch_size).argmax(dim=1)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
        """Share of ``images`` whose predicted digit equals ``labels``."""
        labels = torch.as_tensor(labels).reshape(-1).cpu().long()
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"got {labels.shape[0]} labels for {images.shape[0]} images")
        return (self.predict(images, batch_size) == labels).sum().item() / labels.shape[0]


# --------------------------------------------------------------------------- data
def mnist_splits(data: ImageData | None = None, verbose: bool = False) -> tuple[ImageData, ImageData]:
    """``(rest, holdout)``: the split the classifier uses (``HOLDOUT`` images, seed ``SPLIT_SEED``).

    ``data`` defaults to ``load_mnist(verbose=verbose)``; a missing MNIST raises
    ``DataNotFoundError`` (its message says how to get the files). The split depends only on the
    number of images, so ``load_mnist(image_size=64)`` gives the same images at another size.
    """
    if data is None:
        data = load_mnist(verbose=verbose)
    return data.split(HOLDOUT, seed=SPLIT_SEED)


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random small affine jitter per image: shift up to 2 px, rotate up to ~8 degrees, scale +-10%."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=generator).mul(2).sub(1).to(x.device)  # uniform in [-1, 1]
    angle, scale = 0.15 * u[:, 0], 1 + 0.1 * u[:, 1]
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) * scale, -torch.sin(angle) * scale
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) * scale, torch.cos(angle) * scale
    theta[:, :, 2] = u[:, 2:] * (2 / 14)                                   # 2 px in [-1, 1] coordinates
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # shift to [0, 2] so the zero padding of grid_sample is the black background (-1)
    return F.grid_sample(x + 1, grid, align_corners=False) - 1


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device):
    """Run on one CPU thread: convolutions this small gain little from more threads, and lose a lot
    when other programs keep the cores busy (several times slower on a loaded 2-core machine)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_classifier(train: ImageData, holdout: ImageData, device=None, num_steps: int = TRAIN_STEPS,
                     batch_size: int = 128, seed: int = 0, augment: bool = True,
                     verbose: bool = True) -> MNISTClassifier:
    """Train a fresh :class:`MNISTClassifier` on ``train`` and measure it on ``holdout``.

    Adam with a one-cycle learning-rate schedule (peak 3e-3), cross-entropy, light random
    affine jitter. Seeded and run inside ``torch.random.fork_rng``, so it neither depends on
    nor changes the caller's random state; on the CPU it uses one thread. Returns the net in eval mode with
    ``holdout_accuracy``, ``trained_on`` and ``train_seconds`` set.
    """
    device = config.get_device(device)
    start = time.perf_counter()
    images = MNISTClassifier.prepare(train.images).to(device)
    labels = train.labels.to(device).long()
    if batch_size > images.shape[0]:
        batch_size = images.shape[0]
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), _one_cpu_thread(device):
        torch.manual_seed(seed)
        model = MNISTClassifier().to(device)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=num_steps)
        model.train()
        steps = range(num_steps)
        bar = None
        if verbose:
            from tqdm.auto import tqdm

            steps = bar = tqdm(steps, desc="training the MNIST classifier", unit="batch", leave=False)
        for step in steps:
            idx = torch.randint(0, images.shape[0], (batch_size,), generator=gen).to(device)
            x = images[idx]
            if augment:
                x = _augment(x, gen)
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if bar is not None and step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        if bar is not None:
            bar.close()
    model.eval()
    model.holdout_accuracy = model.accuracy(holdout.images, holdout.labels)
    source = train.source.split(", from ")[0]  # keep machine paths out of what notebooks print
    model.trained_on = (f"{len(train):,} images ({source}); accuracy measured on {len(holdout):,} "
                        f"held-out images (split seed {SPLIT_SEED})")
    model.train_seconds = time.perf_counter() - start
    return model


# --------------------------------------------------------------------------- cache
def _atomic_write(path: Path, write) -> None:
    """Call ``write(file)`` on a temp file in ``path``'s folder, then move it into place (no half files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)                                     # mkstemp makes it private (0600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _save(model: MNISTClassifier, path: Path, half: bool = False) -> None:
    """Write the classifier atomically; ``half=True`` stores the weights as float16 (half the size)."""
    dtype = torch.float16 if half else torch.float32
    payload = {
        "format": CACHE_FORMAT,
        "hparams": dict(model.hparams),
        "state": {k: v.detach().cpu().to(dtype) for k, v in model.state_dict().items()},
        "holdout_accuracy": float(model.holdout_accuracy),
        "trained_on": str(model.trained_on),
        "train_seconds": float(getattr(model, "train_seconds", 0.0)),
        "torch_version": str(torch.__version__),  # plain str: weights_only loading refuses TorchVersion
    }
    _atomic_write(path, lambda f: torch.save(payload, f))


def _load(path: Path, device: torch.device) -> MNISTClassifier:
    """Load a classifier file; raises ``ValueError`` saying why when the file cannot be used."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, or a pickle that is not plain weights
        raise ValueError(f"unreadable ({type(e).__name__})") from e
    if not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT:
        raise ValueError("not a gan_tutorial MNIST-classifier file")
    try:
        model = MNISTClassifier(**payload["hparams"])
        model.load_state_dict({k: v.float() for k, v in payload["state"].items()})
        accuracy = float(payload["holdout_accuracy"])
    except Exception as e:
        raise ValueError(f"does not match this version of MNISTClassifier ({type(e).__name__})") from e
    model.holdout_accuracy, model.trained_on = accuracy, str(payload.get("trained_on", "unknown"))
    model.train_seconds = float(payload.get("train_seconds", 0.0))
    return model.to(device).eval()


def _summary(model: MNISTClassifier) -> str:
    return (f"MNIST classifier: {100 * model.holdout_accuracy:.1f}% accuracy on {HOLDOUT:,} held-out "
            "MNIST images it never trained on")


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest() -> dict:
    """The committed weights' manifest entry: ``sha256``, ``bytes``, ``holdout_accuracy``, how they were made."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))[WEIGHTS.name]


def _load_committed(device: torch.device) -> MNISTClassifier:
    """The committed classifier, after checking its sha256 against the manifest."""
    restore = ("Fix: restore the file (in a clone: git checkout -- gan_tutorial/weights; otherwise reinstall "
               f"the package), or make new weights on purpose with `{RETRAIN}` (it rewrites the manifest too).")
    if not WEIGHTS.is_file() or not MANIFEST.is_file():
        missing = WEIGHTS if not WEIGHTS.is_file() else MANIFEST
        raise FileNotFoundError(f"The metric classifier's {missing.name} is missing from gan_tutorial/weights/. {restore}")
    want, got = manifest()["sha256"], sha256(WEIGHTS)
    if got != want:
        raise WeightsMismatchError(
            f"gan_tutorial/weights/{WEIGHTS.name} does not match the sha256 in {MANIFEST.name} (got {got[:16]}..., "
            f"expected {want[:16]}...): the file is damaged or was changed without its manifest. {restore}")
    return _load(WEIGHTS, device)


def get_classifier(device=None, retrain: bool = False, verbose: bool = True, *, data: ImageData | None = None,
                   path: str | Path | None = None, num_steps: int = TRAIN_STEPS) -> MNISTClassifier:
    """The metric classifier, in eval mode.

    Args:
        device: where the net lives (``None``: ``config.get_device()``).
        retrain: train afresh and overwrite ``path`` (needs ``path``: the committed weights are
            replaced only by ``python -m gan_tutorial.classifier --retrain``).
        verbose: print where it came from and its held-out accuracy; show a progress bar when training.
        data: MNIST to train on when a classifier of your own is trained (default ``load_mnist()``).
            The committed weights ignore it.
        path: ``None`` (default): the weights committed with the package, the same on every machine;
            their sha256 is checked (``WeightsMismatchError`` with the fix when it differs). A file
            of your own instead: loaded when present and valid, else trained on ``data`` and saved there.
        num_steps: minibatches of 128 when training.

    Within one process the loaded net is reused (same object) while the file is unchanged.
    """
    device = config.get_device(device)
    if path is None:
        if retrain:
            raise ValueError("retrain=True needs path=... (a file of your own). The committed weights are "
                             f"replaced on purpose only, with `{RETRAIN}`.")
        key = (str(WEIGHTS), str(device), WEIGHTS.stat().st_mtime_ns if WEIGHTS.is_file() else None)
        model = _LOADED.get(key)
        if model is None:
            model = _LOADED[key] = _load_committed(device)
        if verbose:
            print(_summary(model) + " (the weights committed with the package, sha256 checked)")
        return model
    path = Path(path).expanduser()
    if not retrain and path.is_file():
        key = (str(path.resolve()), str(device), path.stat().st_mtime_ns)
        model = _LOADED.get(key)
        if model is None:
            try:
                model = _load(path, device)
            except ValueError as e:
                print(f"The classifier file {path.name} cannot be used: {e}. Training a new one.")
            else:
                _LOADED[key] = model
        if model is not None:
            if verbose:
                print(_summary(model) + f" (loaded from {path.name})")
            return model
    rest, holdout = mnist_splits(data)
    if verbose:
        source = rest.source.split(", from ")[0]
        print(f"Training an MNIST classifier of your own: {len(rest):,} images to learn "
              f"from, {len(holdout):,} held out, from the {source} ...")
    model = train_classifier(rest, holdout, device=device, num_steps=num_steps, verbose=verbose)
    try:
        _save(model, path)
        _LOADED[(str(path.resolve()), str(device), path.stat().st_mtime_ns)] = model
        saved = f"saved as {path.name}"
    except OSError as e:  # e.g. a read-only folder: still usable, just not saved
        saved = f"could not be saved ({type(e).__name__}: {e})"
    if verbose:
        print(f"{_summary(model)}; trained in {model.train_seconds:.0f} s on {device}, {saved}.")
    return model


# --------------------------------------------------------------------------- the committed weights
def retrain_committed(data: ImageData | None = None, num_steps: int = TRAIN_STEPS, verbose: bool = True) -> dict:
    """Train the metric classifier on the CPU and write ``weights/mnist_classifier.pt`` (float16) and
    ``weights/manifest.json`` (its sha256 and the held-out accuracy of the *stored* weights).

    ``data`` defaults to ``load_mnist()`` (the test split, checksums verified). Returns the manifest entry.
    """
    rest, holdout = mnist_splits(data if data is not None else load_mnist(verbose=verbose))
    model = train_classifier(rest, holdout, device="cpu", num_steps=num_steps, verbose=verbose)
    with tempfile.TemporaryDirectory() as tmp:                   # measure what is stored: float16 weights
        _save(model, Path(tmp) / WEIGHTS.name, half=True)
        stored = _load(Path(tmp) / WEIGHTS.name, torch.device("cpu"))
    stored.holdout_accuracy = stored.accuracy(holdout.images, holdout.labels)
    stored.train_seconds = model.train_seconds
    _save(stored, WEIGHTS, half=True)
    entry = {
        "sha256": sha256(WEIGHTS),
        "bytes": WEIGHTS.stat().st_size,
        "holdout_accuracy": stored.holdout_accuracy,
        "holdout": f"{len(holdout):,} images of the {holdout.source.split(', ')[0]} held out by "
                   f"ImageData.split({HOLDOUT}, seed={SPLIT_SEED}) (classifier.mnist_splits); measured on the CPU "
                   "with the stored float16 weights",
        "trained_on": stored.trained_on,
        "train_steps": num_steps,
        "train_seconds": round(model.train_seconds, 1),
        "torch_version": str(torch.__version__),
        "made_by": RETRAIN,
    }
    _atomic_write(MANIFEST, lambda f: f.write((json.dumps({WEIGHTS.name: entry}, indent=2) + "\n").encode()))
    _LOADED.clear()
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gan_tutorial.classifier",
        description="Check the committed metric classifier (sha256, and held-out accuracy when MNIST is "
                    "available), or --retrain it: rewrites gan_tutorial/weights/mnist_classifier.pt and its manifest.")
    parser.add_argument("--retrain", action="store_true", help="train afresh on the CPU (about a minute) and "
                        "overwrite the committed weights and manifest")
    args = parser.parse_args(argv)
    if args.retrain:
        entry = retrain_committed()
        print(f"Wrote gan_tutorial/weights/{WEIGHTS.name} ({entry['bytes']:,} bytes, sha256 {entry['sha256'][:16]}...) "
              f"and {MANIFEST.name}: {entry['holdout_accuracy']:.2%} held-out accuracy, trained in "
              f"{entry['train_seconds']:.0f} s.")
        return 0
    try:
        model = get_classifier(device="cpu", verbose=False)
    except (OSError, ValueError) as e:
        print(e, file=sys.stderr)
        return 1
    stated = manifest()["holdout_accuracy"]
    print(f"gan_tutorial/weights/{WEIGHTS.name}: sha256 matches {MANIFEST.name}; stated held-out accuracy {stated:.2%}")
    from .data import DataNotFoundError

    try:
        _, holdout = mnist_splits(verbose=False)
    except DataNotFoundError:
        print("MNIST is not available here, so the accuracy was not re-measured (set GAN_TUTORIAL_DATA).")
        return 0
    measured = model.accuracy(holdout.images, holdout.labels)
    print(f"measured on the {len(holdout):,} held-out images: {measured:.2%}")
    if measured != stated:
        print(f"The measured accuracy differs from the stated {stated:.2%}.", file=sys.stderr)
        return 1
    return 0


__all__ = ["HOLDOUT", "MNISTClassifier", "WeightsMismatchError", "get_classifier", "mnist_splits",
           "retrain_committed", "train_classifier"]

if __name__ == "__main__":
    sys.exit(main())
