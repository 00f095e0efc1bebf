"""Checkpoints shipped with the package, so a class can skip the long training runs (classroom mode).

Each one is a recipe trained exactly as its notebook's full-mode run trains it (CPU, seed 0, the
8,000 training digits of ``classifier.mnist_splits``), written by a script in the repository::

    python -m gan_tutorial.shipped --retrain [NAME ...]   # train, store, measure, rewrite the manifest
    python -m gan_tutorial.shipped                         # check every file's sha256 and re-measure it

A file holds the generator in float16 (and its EMA copy when the recipe keeps one), the training
curves and a dozen fixed-noise snapshots as 8-bit images; not the discriminator or the optimisers.
``weights/shipped/manifest.json`` lists each file's sha256 and the metric measured *from the stored
file* (classifier-FID against the 2,000 held-out digits, or label accuracy for the cGANs).
:func:`load` checks the sha256, loads with ``weights_only=True`` and returns a :class:`Trainer`::

    trainer = shipped.load("mlp", train_set)   # .sample(), .sampling_G, .history, .snapshots, .step
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import conditional, config, metrics, recipes
from .checkpoints import atomic_save
from .classifier import WeightsMismatchError, get_classifier, mnist_splits, sha256
from .data import load_mnist
from .train import Trainer

FOLDER = Path(__file__).resolve().parent / "weights" / "shipped"
MANIFEST = FOLDER / "manifest.json"
FORMAT = "gan_tutorial-shipped-v1"
RETRAIN = "python -m gan_tutorial.shipped --retrain"
SEED = 0
NUM_EVAL = 5000          # samples per measurement, as in the notebooks' full mode
MAX_SNAPSHOTS = 13       # snapshots kept (evenly spaced, the last always): enough for the animations


@dataclass(frozen=True)
class Spec:
    """How one shipped checkpoint is trained: a recipe plus the notebook's full-mode settings."""

    recipe: str
    notebook: str
    num_steps: int
    settings: dict = field(default_factory=dict)   # TrainConfig overrides (log_every, snapshot_every, ...)
    build: dict = field(default_factory=dict)      # recipe builder keywords (e.g. width)
    data: str = "train"                            # "train": the 8,000 digits; "small": 20 per digit of them


SPECS = {
    "mlp": Spec("mlp", "02", 6000, dict(log_every=25, snapshot_every=125)),
    "dcgan": Spec("dcgan", "03", 3000, dict(log_every=25, snapshot_every=125, channels_last=True), dict(width=32)),
    "cgan": Spec("cgan", "04", 8000, dict(log_every=50)),
    "cgan-small": Spec("cgan", "04", 3000, dict(log_every=100), data="small"),
    "wgan-gp": Spec("wgan-gp", "05", 2000, dict(log_every=25)),
}


def names() -> list[str]:
    return list(SPECS)


def _spec(name: str) -> Spec:
    if name not in SPECS:
        raise ValueError(f"No shipped checkpoint called {name!r}. Shipped: {', '.join(SPECS)}.")
    return SPECS[name]


def path(name: str) -> Path:
    _spec(name)
    return FOLDER / f"{name}.pt"


def manifest() -> dict:
    """Every shipped file's entry: sha256, bytes, steps, seconds, the measured metric, how it was made."""
    if not MANIFEST.is_file():
        raise FileNotFoundError(f"{MANIFEST} is missing. {_RESTORE}")
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


_RESTORE = ("Fix: restore the files (in a clone: git checkout -- gan_tutorial/weights/shipped; otherwise reinstall "
            f"the package), or train new ones on purpose with `{RETRAIN}` (it rewrites the manifest too).")


def training_data(name: str, mnist=None):
    """``(train data for the spec, held-out ImageData)``: the same split on every machine."""
    train, holdout = mnist_splits(mnist if mnist is not None else load_mnist(verbose=False))
    if _spec(name).data == "small":
        train = conditional.balanced_subset(train, 20, seed=SEED)
    data = (train.images, train.labels) if recipes.get(_spec(name).recipe).conditional else train
    return data, holdout


def _config(name: str, device):
    spec = _spec(name)
    return recipes.get(spec.recipe).config(num_steps=spec.num_steps, seed=SEED, progress=False, device=device,
                                           **spec.settings)


# --------------------------------------------------------------------------- writing
def _compact(trainer: Trainer) -> dict:
    def half(state):
        return {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu() for k, v in state.items()}

    snaps = trainer.snapshots
    keep = sorted({round(i * (len(snaps) - 1) / (MAX_SNAPSHOTS - 1)) for i in range(MAX_SNAPSHOTS)}) if snaps else []
    samples = [((snaps[i]["samples"].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8) for i in keep]
    return {
        "format": FORMAT, "recipe": trainer.recipe, "step": trainer.step, "elapsed": float(trainer.elapsed),
        "G": half(trainer.net_G.state_dict()),
        "G_ema": None if trainer.ema_G is None else half(trainer.ema_G.module.state_dict()),
        "n_averaged": 0 if trainer.ema_G is None else int(trainer.ema_G.n_averaged),
        "history": {k: [float(x) for x in v] for k, v in trainer.history.items()},
        "snapshot_steps": [int(snaps[i]["step"]) for i in keep],
        "snapshots": torch.stack(samples) if samples else torch.zeros(0, dtype=torch.uint8),
        "torch_version": str(torch.__version__),
    }


def measure(name: str, trainer: Trainer, holdout, classifier=None) -> dict:
    """The number the manifest records: classifier-FID of ``NUM_EVAL`` samples (seed 0) against the
    held-out digits, or for a cGAN the label accuracy of ``NUM_EVAL`` samples (balanced labels, seed 1)."""
    classifier = classifier or get_classifier(device="cpu", verbose=False)
    if trainer.num_classes:
        labels = torch.arange(NUM_EVAL) % trainer.num_classes
        fake = conditional.generate(trainer.sampling_G, labels, seed=SEED + 1)
        return {"label_accuracy": round(metrics.label_accuracy(fake, labels, classifier), 4)}
    torch.manual_seed(SEED)
    fake = trainer.sample(NUM_EVAL)
    return {"classifier_fid": round(float(metrics.classifier_fid(fake, holdout.images.cpu(), classifier)), 2)}


def retrain(which: list[str] | None = None, verbose: bool = True) -> dict:
    """Train the shipped checkpoints on the CPU, store them, measure the stored files, update the manifest."""
    mnist = load_mnist(verbose=verbose)
    classifier = get_classifier(device="cpu", verbose=False)
    entries = manifest() if MANIFEST.is_file() else {}
    for name in which or names():
        spec = _spec(name)
        data, holdout = training_data(name, mnist)
        torch.manual_seed(SEED)                    # the notebook's initial weights
        net_G, net_D, _ = recipes.build(spec.recipe, **spec.build)
        trainer = Trainer(net_G, net_D, data, _config(name, "cpu"), recipe=spec.recipe)
        if verbose:
            print(f"training {name} (recipe {spec.recipe!r}, notebook {spec.notebook}): {spec.num_steps:,} steps ...",
                  flush=True)
        start = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - start
        atomic_save(_compact(trainer), path(name))
        stored = load(name, data, device="cpu", check=False, verbose=False)
        entries[name] = {
            "file": path(name).name, "sha256": sha256(path(name)), "bytes": path(name).stat().st_size,
            "recipe": spec.recipe, "notebook": spec.notebook, "steps": trainer.step,
            "train_seconds": round(seconds, 1), **measure(name, stored, holdout, classifier),
            "measured": f"from the stored float16 file on the CPU, {NUM_EVAL:,} samples, against the 2,000 held-out "
                        "digits of classifier.mnist_splits",
            "trained_on": ("20 images per digit of the 8,000 training digits (conditional.balanced_subset, seed 0)"
                           if spec.data == "small" else "the 8,000 training digits of classifier.mnist_splits"),
            "settings": {k: v for k, v in spec.settings.items()}, "seed": SEED,
            "torch_version": str(torch.__version__), "made_by": f"{RETRAIN} {name}",
        }
        FOLDER.mkdir(parents=True, exist_ok=True)
        MANIFEST.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        if verbose:
            print(f"  {path(name).name}: {entries[name]['bytes'] / 1e6:.1f} MB, {seconds:.0f} s, "
                  f"{ {k: v for k, v in entries[name].items() if k in ('classifier_fid', 'label_accuracy')} }", flush=True)
    return entries


# --------------------------------------------------------------------------- reading
def load(name: str, data=None, device=None, check: bool = True, verbose: bool = True) -> Trainer:
    """The shipped checkpoint ``name`` as a :class:`Trainer` ready to sample and plot.

    ``data`` is what the trainer would train on (default: the spec's split of MNIST); the sha256 is
    checked against the manifest first. The discriminator is freshly initialised (not shipped) and
    the optimisers are new, so ``fit()`` on the result continues with a discriminator that starts over.
    """
    spec, file = _spec(name), path(name)
    if not file.is_file():
        raise FileNotFoundError(f"The shipped checkpoint {file.name} is missing from gan_tutorial/weights/shipped/. "
                                f"{_RESTORE}")
    entry = manifest().get(name) if check else None
    if check:
        if entry is None:
            raise WeightsMismatchError(f"{MANIFEST.name} has no entry for {name!r}. {_RESTORE}")
        got = sha256(file)
        if got != entry["sha256"]:
            raise WeightsMismatchError(f"gan_tutorial/weights/shipped/{file.name} does not match the sha256 in "
                                       f"{MANIFEST.name} (got {got[:16]}..., expected {entry['sha256'][:16]}...): "
                                       f"the file is damaged or was changed without its manifest. {_RESTORE}")
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{file} could not be read ({type(e).__name__}: {str(e)[:200]}). {_RESTORE}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{file} is not a {FORMAT!r} file. {_RESTORE}")
    device = config.get_device(device)
    if data is None:
        data = training_data(name)[0]
    torch.manual_seed(SEED)
    net_G, net_D, _ = recipes.build(spec.recipe, **spec.build)
    trainer = Trainer(net_G, net_D, data, _config(name, device), recipe=spec.recipe)

    def to_float(state):
        return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}

    trainer.net_G.load_state_dict(to_float(ckpt["G"]))
    if trainer.ema_G is not None:
        trainer.ema_G.module.load_state_dict(to_float(ckpt["G_ema"]))
        trainer.ema_G.n_averaged.fill_(ckpt["n_averaged"])
    trainer.step, trainer.elapsed = int(ckpt["step"]), float(ckpt["elapsed"])
    trainer.history = {k: list(v) for k, v in ckpt["history"].items()}
    trainer.snapshots = [{"step": s, "samples": img.float() / 127.5 - 1}
                         for s, img in zip(ckpt["snapshot_steps"], ckpt["snapshots"])]
    if verbose:
        metric = ", ".join(f"{k.replace('_', ' ')} {v:.1%}" if k == "label_accuracy" else f"classifier-FID {v:.1f}"
                           for k, v in (entry or {}).items() if k in ("classifier_fid", "label_accuracy"))
        print(f"loaded the shipped {name!r} checkpoint (sha256 checked): recipe {spec.recipe!r}, {trainer.step:,} steps, "
              f"trained in {trainer.elapsed:.0f} s on a CPU" + (f"; its manifest says {metric}" if metric else ""))
    return trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_tutorial.shipped",
                                     description="Check the shipped checkpoints (sha256, and the metric re-measured "
                                                 "when MNIST is available), or --retrain them.")
    parser.add_argument("names", nargs="*", help=f"which ones (default: all of {', '.join(SPECS)})")
    parser.add_argument("--retrain", action="store_true",
                        help="train on the CPU (minutes each) and overwrite the files and the manifest")
    args = parser.parse_args(argv)
    try:
        for name in args.names:
            _spec(name)
        if args.retrain:
            retrain(args.names or None)
            return 0
        from .data import DataNotFoundError

        entries, status = manifest(), 0
        for name in args.names or names():
            try:
                data, holdout = training_data(name)
            except DataNotFoundError:                 # a stand-in to build the trainer on: the hash is what counts
                holdout, images = None, torch.zeros(64, 1, 28, 28)
                data = (images, torch.zeros(64, dtype=torch.long)) if recipes.get(SPECS[name].recipe).conditional else images
            trainer = load(name, data, device="cpu", verbose=False)
            if holdout is None:
                print(f"{name}: sha256 matches; MNIST is not available here, so the metric was not re-measured")
                continue
            got = measure(name, trainer, holdout)
            stated = {k: entries[name][k] for k in got}
            ok = all(abs(got[k] - stated[k]) <= (0.05 if k == "classifier_fid" else 0.002) for k in got)
            status |= not ok
            print(f"{name}: sha256 matches; measured {got}, manifest {stated}" + ("" if ok else "  <-- DIFFERS"))
        return status
    except (OSError, ValueError) as e:
        print(e, file=sys.stderr)
        return 1


__all__ = ["SPECS", "Spec", "load", "manifest", "measure", "names", "retrain", "training_data"]

if __name__ == "__main__":
    sys.exit(main())
