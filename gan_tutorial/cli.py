"""Command line: ``python -m gan_tutorial {train,sample,evaluate}`` (installed as ``gan-tutorial`` too).

``train`` takes MNIST, CIFAR-10, CelebA or a folder of images (``--dataset``); ``evaluate``
measures MNIST models with a small MNIST classifier, and colour models by their FID (Inception-v3
features; optional extra ``fid``).

Examples::

    python -m gan_tutorial train --model dcgan --time-budget 600 --out runs
    python -m gan_tutorial train --model dcgan --dataset folder:~/faces --image-size 64 --out runs
    python -m gan_tutorial sample --checkpoint runs/dcgan.pt --num-samples 64 --out dcgan.png
    python -m gan_tutorial evaluate --checkpoint runs/dcgan.pt --json dcgan_metrics.json

Mistakes in the arguments (an unknown model, a size a model cannot take, a device this machine
lacks, a missing or corrupt checkpoint, data not on disk) print one line naming the fix and
exit with status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from . import config, recipes
from .models import generate

DEFAULT_STEPS = (200, 10000)          # generator steps when neither --steps nor --epochs is given: (fast, full)
DATASETS = "mnist, cifar10, celeba or folder:PATH"
DEFAULT_SIZE = {"mnist": 28, "cifar10": 32, "celeba": 64, "folder": 64}   # --image-size when not given
EXAMPLES = """examples:
  python -m gan_tutorial train --model dcgan --time-budget 600 --out runs
  python -m gan_tutorial train --model dcgan --dataset cifar10 --download --out runs_cifar
  python -m gan_tutorial train --model dcgan --dataset folder:~/faces --image-size 64 --out runs_faces
  python -m gan_tutorial sample --checkpoint runs/dcgan.pt --num-samples 64 --out dcgan.png
  python -m gan_tutorial evaluate --checkpoint runs/dcgan.pt --json dcgan_metrics.json

environment: GAN_TUTORIAL_DATA (folder holding mnist/, cifar-10-batches-py/, celeba/img_align_celeba/),
GAN_TUTORIAL_CACHE (where the metric classifier is kept), GAN_TUTORIAL_DEVICE, GAN_TUTORIAL_FAST=1
(small default budgets)."""


class UserError(Exception):
    """A mistake the user can fix; ``main`` prints it on one line and exits with status 2.

    Under torchrun every process meets the same mistake, so only the first prints it; ``every_rank=True``
    marks a mistake of one process (its GPU, say), which that process prints with its rank.
    """

    def __init__(self, message: str, every_rank: bool = False):
        super().__init__(message)
        self.every_rank = every_rank


# --------------------------------------------------------------------------- argument types
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0 (0: read in the main process), got {text!r}")
    return value


def _dataset(text: str) -> str:
    name = text.strip()
    if name.lower() in ("mnist", "cifar10", "celeba"):
        return name.lower()
    if name.lower().startswith("folder:") and name[7:].strip():
        return "folder:" + name[7:].strip()
    raise argparse.ArgumentTypeError(f"expected {DATASETS} (a folder of images), got {text!r}")


def _digit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"must be a digit from 0 to 9, got {text!r}")
    return value


# --------------------------------------------------------------------------- parser
class _HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: ...)" to options that have a meaningful default and do not mention one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.option_strings and "default" not in text and action.default is not None
                and action.default is not False and action.default is not argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def build_parser(prog: str = "gan-tutorial") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Train GANs on MNIST, CIFAR-10, CelebA or your own images, draw samples from "
                               "them and measure them.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    device_help = "cpu, cuda, cuda:N, mps or auto (default: $GAN_TUTORIAL_DEVICE, else auto: cuda, then mps, then cpu)"

    t = sub.add_parser(
        "train", help="train a GAN on MNIST, CIFAR-10, CelebA or a folder of images and write checkpoints",
        description="Train a GAN with the package's training loop. Writes DIR/<model>.pt "
                    "(the checkpoint, rewritten every --checkpoint-every steps and at the end) and "
                    "DIR/<model>_samples.png (samples from a fixed batch of noise). Training stops at "
                    "--steps / --epochs or when --time-budget runs out, whichever comes first. "
                    "Several processes: torchrun --nproc_per_node N -m gan_tutorial train ... (one per GPU, "
                    "or CPU workers; --batch-size is per process, --global-batch-size for all of them; only the first process "
                    "prints and writes).",
        formatter_class=_HelpFormatter)
    t.add_argument("--model", choices=recipes.names("mnist"), metavar="NAME",
                   help="a recipe: " + ", ".join(recipes.names("mnist")) + " (--list describes them); colour "
                        "images need a convolutional one: " + ", ".join(n for n in recipes.names("mnist")
                                                                        if recipes.get(n).convolutional))
    t.add_argument("--list", action="store_true", help="print the recipes with their measured results and exit")
    t.add_argument("--dataset", default="mnist", type=_dataset, metavar="NAME",
                   help="training images: mnist (test split, 10,000 digits), cifar10 (train split, 50,000), celeba "
                        "(aligned faces) or folder:PATH (images, or one subfolder of images per class)")
    t.add_argument("--out", default="runs", metavar="DIR", help="folder for the checkpoint and sample grid")
    budget = t.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=_positive_int, metavar="N",
                        help=f"generator steps (default: {DEFAULT_STEPS[0]} in fast mode, {DEFAULT_STEPS[1]} otherwise)")
    budget.add_argument("--epochs", type=_positive_float, metavar="E",
                        help="passes of the discriminator over the data, converted to generator steps "
                             "(ceil(E * images / (batch size * k)); k = 5 critic steps for wgan-gp)")
    t.add_argument("--time-budget", type=_positive_float, metavar="SECONDS",
                   help="stop cleanly once the run's training time reaches this many seconds (the checkpoint is "
                        "written); with --resume it counts the time already trained too")
    batch = t.add_mutually_exclusive_group()
    batch.add_argument("--batch-size", type=_positive_int, metavar="N",
                       help="images per minibatch, in each process under torchrun (default: the recipe's)")
    batch.add_argument("--global-batch-size", type=_positive_int, metavar="N",
                       help="images per step over all processes under torchrun, split evenly between them "
                            "(N must be a multiple of the number of processes); the same as --batch-size in one process")
    t.add_argument("--lr", type=_positive_float, metavar="LR", help="learning rate of both nets (default: the recipe's)")
    t.add_argument("--ema-decay", type=float, metavar="D",
                   help="decay of the generator's weight average, e.g. 0.999; 0 switches it off (default: the recipe's)")
    t.add_argument("--image-size", type=_positive_int, metavar="PX",
                   help="image side in pixels: 28, 32 or 64 for dcgan/wgan-gp-conv; any size >= 8 for mlp/cgan "
                        "(default: 28 for mnist, 32 for cifar10, 64 for celeba and folders)")
    t.add_argument("--channels", type=int, choices=[1, 3], metavar="C",
                   help="3 (colour) or 1 (grey-scale by luma) (default: 1 for mnist, 3 otherwise)")
    t.add_argument("--stream", action="store_true",
                   help="celeba and folders: read the images from disk batch by batch instead of holding them in "
                        "memory (for data sets larger than memory; resumes in the same order)")
    t.add_argument("--workers", type=_workers, metavar="N",
                   help="processes reading image files (default: up to 4, one fewer than the CPU cores)")
    t.add_argument("--amp", choices=["bf16", "fp16"], help="mixed precision on a GPU (default: float32 throughout)")
    t.add_argument("--device", default=None, help=device_help)
    t.add_argument("--seed", type=int, default=0, metavar="N", help="seed for weights, noise and data order")
    t.add_argument("--checkpoint-every", type=_positive_int, default=500, metavar="N",
                   help="steps between checkpoints")
    t.add_argument("--log-every", type=_positive_int, default=50, metavar="N", help="steps between loss records")
    t.add_argument("--download", action="store_true",
                   help="download mnist, cifar10 or celeba with torchvision if it is not on disk")
    t.add_argument("--resume", action="store_true",
                   help="continue from DIR/<model>.pt (same model and settings) up to the new --steps or --time-budget "
                        "(both count the whole run, including what was trained before)")
    t.add_argument("--sync-bn", action="store_true",
                   help="under torchrun on GPUs: batch norm with the statistics of all processes' batches")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser(
        "sample", help="draw images from a trained generator",
        description="Draw images from a checkpoint's generator. FILE.pt gets a dict with 'samples' "
                    "(float tensor N x C x H x W in [-1, 1]) and, for conditional models, 'labels'; "
                    "FILE.png gets a grid of the images.",
        formatter_class=_HelpFormatter)
    s.add_argument("--checkpoint", required=True, metavar="PATH", help="a .pt file written by `train`")
    s.add_argument("--num-samples", type=_positive_int, default=64, metavar="N", help="how many images")
    s.add_argument("--out", required=True, metavar="FILE", help="where to write: a .pt or .png file")
    s.add_argument("--label", type=_digit, metavar="D",
                   help="conditional models only: draw only this digit (default: 0, 1, ..., 9, 0, ...)")
    s.add_argument("--nrow", type=_positive_int, metavar="K", help="images per row in a .png (default: about sqrt(N))")
    s.add_argument("--device", default=None, help=device_help)
    s.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the noise")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator even when the run kept an EMA copy")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser(
        "evaluate", help="measure a trained generator (MNIST classifier; Inception FID for colour images)",
        description="Measure a checkpoint's generator. MNIST models: against 2,000 real MNIST images held out "
                    "from the metric classifier's training (`train` itself uses all 10,000 images, these "
                    "included): classifier FID (Frechet distance of the features of a small MNIST classifier; "
                    "not comparable to Inception FID numbers), the class histogram of the samples (KL from "
                    "uniform, share of the rarest digit) and, for conditional models, label accuracy. The "
                    "classifier's weights ship with the package. Other data sets (cifar10, celeba, folder:PATH): "
                    "FID, the Frechet distance of Inception-v3 features, between N samples and N real images "
                    "(CIFAR-10: the first N of the train split; celeba and folders: N drawn with seed 0), "
                    "both at the generator's size. It needs the optional extra: pip install \"gan-tutorial[fid]\"; "
                    "the Inception weights (about 96 MB) are downloaded once into torch's hub cache.",
        formatter_class=_HelpFormatter)
    e.add_argument("checkpoint_file", nargs="?", metavar="CHECKPOINT", help="a .pt file written by `train`")
    e.add_argument("--checkpoint", metavar="PATH", help="the same, as an option")
    e.add_argument("--dataset", type=_dataset, metavar="NAME",
                   help="real images to compare with: mnist, cifar10, celeba or folder:PATH (default: the data set "
                        "the checkpoint was trained on)")
    e.add_argument("--num-samples", type=_positive_int, metavar="N",
                   help="images to generate (default: 500 in fast mode, 2000 otherwise; at least 2, "
                        "at least 4 for colour)")
    e.add_argument("--json", metavar="FILE", help="also write the numbers to this JSON file")
    e.add_argument("--device", default=None, help=device_help)
    e.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the noise")
    e.add_argument("--download", action="store_true",
                   help="download mnist, cifar10 or celeba with torchvision if it is not on disk")
    e.add_argument("--no-ema", action="store_true", help="measure the raw generator even when the run kept an EMA copy")
    e.set_defaults(func=cmd_evaluate)
    return parser


# --------------------------------------------------------------------------- shared helpers
def _device(name):
    try:
        return config.get_device(name)
    except (ValueError, RuntimeError) as e:
        raise UserError(f"{e} (--device)") from None


def _load_mnist(image_size: int, download: bool, verbose: bool = True):
    from .data import DataNotFoundError, load_mnist

    try:
        return load_mnist(image_size=image_size, download=download, verbose=verbose)
    except DataNotFoundError as e:
        first = str(e).splitlines()[0]
        raise UserError(f"{first} Fix: pass --download (needs internet), or put the idx files in DIR/mnist/ "
                        "and set GAN_TUTORIAL_DATA=DIR.") from None


def _load_images(args, kind: str, image_size: int, channels: int):
    """The training images of ``--dataset`` other than MNIST (uint8 in memory, or files with --stream)."""
    from . import images
    from .data import DataChecksumError, DataNotFoundError

    common = dict(image_size=image_size, channels=channels)
    try:
        if kind == "cifar10":
            return images.load_cifar10(split="train", download=args.download, **common)
        if kind == "celeba":
            return images.load_celeba(download=args.download, stream=args.stream, num_workers=args.workers, **common)
        return images.load_image_folder(args.dataset[len("folder:"):], stream=args.stream,
                                        num_workers=args.workers, **common)
    except (DataNotFoundError, DataChecksumError) as e:
        raise UserError(" ".join(line.strip() for line in str(e).splitlines())) from None


def _check_data_args(args, recipe, kind: str, channels: int) -> None:
    """Refuse combinations of model, data set and options that cannot train, naming the fix."""
    convolutional = ", ".join(n for n in recipes.names("mnist") if recipes.get(n).convolutional)
    if kind == "mnist" and channels != 1:
        raise UserError("MNIST is grey-scale (1 channel). Fix: drop --channels 3, or choose a colour --dataset "
                        "(cifar10, celeba, folder:PATH).")
    if recipe.conditional and kind != "mnist":
        raise UserError(f"--model {recipe.name} draws MNIST digits by label and trains on MNIST only for now. "
                        f"Fix: use --model dcgan (or {convolutional}) for --dataset {args.dataset}.")
    if channels == 3 and not recipe.convolutional:
        raise UserError(f"--model {recipe.name} is a fully connected net for grey-scale digits and does not train on "
                        f"colour images. Fix: use --model dcgan (or {convolutional}), or pass --channels 1.")
    if args.stream and kind not in ("celeba", "folder"):
        raise UserError(f"--stream reads celeba or folder:PATH from disk; {args.dataset} fits in memory. "
                        "Fix: drop --stream.")


def _ema_note(decay, step: int, raw_instead: str) -> str | None:
    """A warning when the generator's running average still holds much of the untrained generator.

    After ``step`` steps the average weighs the initial weights by ``decay ** step`` (0.999 ** 500 =
    0.61): its samples then look unfinished although training went well."""
    if not decay or decay ** step <= 0.05:
        return None
    enough = math.ceil(math.log(0.05) / math.log(decay))
    return (f"note: after {step:,} steps the generator's running average (EMA {decay:g}) still holds "
            f"about {decay ** step:.0%} of the untrained generator, so its samples look unfinished. Fix: train to about "
            f"{enough:,} steps (--resume continues), or {raw_instead} for the raw generator.")


def _split_batch(global_batch: int, world: int) -> int:
    """Images per process for ``--global-batch-size`` over ``world`` processes; refuses an uneven split."""
    if global_batch % world:
        below, above = global_batch // world * world, (global_batch // world + 1) * world
        nearest = f"{below} or {above}" if below else f"{above}"
        raise UserError(f"--global-batch-size {global_batch} does not split evenly over {world} processes. Fix: use "
                        f"a multiple of {world} (e.g. {nearest}), start a number of processes that divides "
                        f"{global_batch}, or give the images per process with --batch-size.")
    return global_batch // world


def _load_models(path, device, ema: bool = True):
    from .checkpoints import load, models_from_checkpoint

    try:
        ckpt = load(path)
    except FileNotFoundError:
        raise UserError(f"no checkpoint at {path}. Fix: check --checkpoint, or train one with "
                        "`python -m gan_tutorial train --model dcgan --out DIR`.") from None
    except ValueError as e:
        raise UserError(f"{e}".replace("\n", " ")) from None
    try:
        net_G, _ = models_from_checkpoint(ckpt, device=device, ema=ema)   # the EMA weights when the run kept them
    except Exception as e:  # a checkpoint of the right format whose contents do not fit
        what = f"a {ckpt.get('recipe')} checkpoint" if ckpt.get("recipe") else f"a {ckpt['G'].get('class')}"
        raise UserError(f"{path} holds {what} that this version cannot rebuild ({type(e).__name__}: "
                        f"{str(e)[:120]}). Fix: train it again with this version "
                        "(python -m gan_tutorial train --model NAME).") from None
    return net_G, ckpt


def _say(text: str = "") -> None:
    print(text, flush=True)


def _check_resume(path, name: str, dataset: str = "mnist") -> None:
    from .checkpoints import load

    try:
        ckpt = load(path)
    except ValueError as e:
        raise UserError(str(e).replace("\n", " ")) from None
    written_by = ckpt.get("recipe")
    if written_by and written_by != name:
        raise UserError(f"{path} was trained with the {written_by!r} recipe, not {name!r}. Fix: resume with "
                        f"--model {written_by}, or start a new run in another --out folder.")
    trained_on = ckpt.get("dataset") or "mnist"       # files written before --dataset had a choice: MNIST
    if trained_on.split(":")[0] != dataset.split(":")[0]:
        raise UserError(f"{path} was trained on --dataset {trained_on}, not {dataset}. Fix: resume with "
                        f"--dataset {trained_on}, or start a new run in another --out folder.")


# --------------------------------------------------------------------------- train
def cmd_train(args) -> int:
    from . import distributed
    from .train import Trainer, TrainingDiverged

    if args.list:
        _say("Recipes (python -m gan_tutorial train --model NAME):\n" + recipes.table("mnist"))
        return 0
    if args.model is None:
        raise UserError("--model is required; one of: " + ", ".join(recipes.names("mnist"))
                        + " (--list describes them).")
    recipe = recipes.get(args.model)
    device = _device(args.device)
    if distributed.launched_by_torchrun():   # one process per GPU (or CPU worker): rank 0 prints and writes
        try:
            device = distributed.init(device)
        except (RuntimeError, ValueError) as e:
            raise UserError(f"process {os.environ.get('RANK', '?')}: {e} (torchrun)", every_rank=True) from None
    say, world = (_say if distributed.is_main() else (lambda text="": None)), distributed.world_size()
    if args.sync_bn and device.type != "cuda":
        raise UserError("--sync-bn shares batch-norm statistics between GPUs (SyncBatchNorm runs on CUDA only). "
                        "Fix: drop --sync-bn, or train on GPUs with torchrun.")
    if args.global_batch_size is not None:
        _split_batch(args.global_batch_size, world)   # before loading data that may take minutes
    kind = args.dataset.split(":")[0]
    image_size = args.image_size or DEFAULT_SIZE[kind]
    channels = args.channels or (1 if kind == "mnist" else 3)
    if image_size < 8:
        raise UserError(f"--image-size {image_size} is too small; use 28, 32 or 64.")
    if args.ema_decay is not None and not 0 <= args.ema_decay < 1:
        raise UserError(f"--ema-decay {args.ema_decay:g} must be in [0, 1): e.g. 0.999, or 0 to switch EMA off.")
    _check_data_args(args, recipe, kind, channels)
    config.seed_everything(args.seed)
    try:
        net_G, net_D = recipe.build(channels=channels, image_size=image_size)
    except ValueError as e:
        raise UserError(f"{e} (--model {args.model} --image-size {image_size})") from None
    out = Path(args.out)
    ckpt_path = out / f"{args.model}.pt"
    if ckpt_path.exists() and not args.resume:
        raise UserError(f"{ckpt_path} already exists. Fix: pass --resume to continue training it, "
                        "or choose another --out folder.")
    if args.resume and not ckpt_path.exists():
        raise UserError(f"--resume was given but there is no {ckpt_path} to continue. "
                        "Fix: drop --resume, or point --out to the folder of the earlier run.")
    if args.resume:
        _check_resume(ckpt_path, recipe.name, args.dataset)     # before loading data that may take minutes
    say(config.describe(device))
    with distributed.main_first():   # several processes: rank 0 reads (or downloads) first, the others after
        images = (_load_mnist(image_size, args.download, verbose=distributed.is_main()) if kind == "mnist"
                  else _load_images(args, kind, image_size, channels))
    settings = recipe.train_kwargs()
    if args.batch_size is not None:
        settings["batch_size"] = args.batch_size
    if args.global_batch_size is not None:
        settings["batch_size"] = args.global_batch_size // world   # checked above: splits evenly
    if args.lr is not None:
        settings["lr_G"] = settings["lr_D"] = args.lr
    if args.ema_decay is not None:
        settings["ema_decay"] = args.ema_decay or None
    k, batch_size = settings["k"], settings["batch_size"]
    if args.steps is not None:
        num_steps = args.steps
    elif args.epochs is not None:
        num_steps = max(1, math.ceil(args.epochs * len(images) / (batch_size * k * world)))
    else:
        num_steps = config.pick(*DEFAULT_STEPS)
    if batch_size > len(images):
        raise UserError(f"--batch-size {batch_size} is larger than the dataset ({len(images)} images).")
    if batch_size * world > len(images):
        raise UserError(f"--batch-size {batch_size} per process x {world} processes is larger than the dataset "
                        f"({len(images)} images). Fix: lower --batch-size, or start fewer processes.")
    settings.update(num_steps=num_steps, device=str(device), amp=args.amp, log_every=args.log_every,
                    checkpoint_path=str(ckpt_path), checkpoint_every=args.checkpoint_every,
                    time_budget=args.time_budget, seed=args.seed, progress=True, sync_bn=args.sync_bn)
    try:
        trainer = Trainer(net_G, net_D, images, recipe=recipe.name, dataset=args.dataset, **settings)
        if args.resume:
            trainer.load_checkpoint(ckpt_path)
    except (ValueError, FileNotFoundError) as e:
        raise UserError(str(e).replace("\n", " ")) from None
    budget = f", time budget {args.time_budget:g} s" if args.time_budget else ""
    start_step = trainer.step
    ema = f", EMA {settings['ema_decay']:g}" if settings.get("ema_decay") else ""
    per = f" per process x {world} processes" if world > 1 else ""
    say(f"Training {args.model} ({trainer.loss_fn.name} loss, k={k}, lr_G={settings['lr_G']:g}, "
        f"lr_D={settings['lr_D']:g}, batch {batch_size}{per}{ema}) on {len(images):,} {args.dataset} images "
        f"({channels} channel{'s' if channels > 1 else ''}, {image_size} px): "
        f"up to {num_steps:,} generator steps{budget}.")
    if start_step:
        left = f"{max(0.0, args.time_budget - trainer.elapsed):.0f} s" if args.time_budget else "no time limit"
        say(f"Resuming from step {start_step:,} after {trainer.elapsed:.0f} s of training; --steps and "
            f"--time-budget count the whole run, so {max(0, num_steps - start_step):,} steps and {left} remain.")
        if start_step >= num_steps or (args.time_budget and trainer.elapsed >= args.time_budget):
            raise UserError(f"{ckpt_path} has already trained {start_step:,} steps in {trainer.elapsed:.0f} s, which "
                            "meets --steps/--time-budget (they count the whole run). Fix: pass a larger --steps "
                            "or --time-budget.")
    started = time.perf_counter()
    try:
        trainer.fit()
    except TrainingDiverged as e:   # several processes: every rank stops at the same record
        if distributed.is_main():
            print(f"training stopped: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        kept = trainer.last_good_checkpoint or "none written yet"
        print(f"\nInterrupted at step {trainer.step}. Last checkpoint: {kept} (continue with --resume).",
              file=sys.stderr)
        return 130
    seconds = time.perf_counter() - started
    grid_path = out / f"{args.model}_samples.png"
    from .plotting import save_grid

    if distributed.is_main():   # the checkpoint too is written by rank 0 only
        save_grid(trainer.sample(), grid_path)   # the EMA generator when the recipe keeps one
    last = {key: trainer.history[key][-1] for key in ("loss_D", "loss_G") if trainer.history.get(key)}
    losses = ", ".join(f"{key} {value:.3f}" for key, value in last.items())
    say(f"Trained {trainer.step - start_step:,} steps (now at step {trainer.step:,}) in {seconds:.0f} s"
        + (f"; last {losses}" if losses else "") + ".")
    say(f"Checkpoint: {ckpt_path}\nSamples:    {grid_path}")
    note = _ema_note(settings.get("ema_decay"), trainer.step, "run sample/evaluate with --no-ema")
    if note:
        say(note)
    say(f"Next: python -m gan_tutorial evaluate --checkpoint {ckpt_path}")
    return 0


def _warn_early_ema(ckpt: dict, args) -> None:
    if ckpt.get("G_ema") and not args.no_ema:
        note = _ema_note((ckpt.get("config") or {}).get("ema_decay"), int(ckpt["step"]), "add --no-ema")
        if note:
            print(note, file=sys.stderr)


# --------------------------------------------------------------------------- sample
def cmd_sample(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".pt", ".png"):
        raise UserError(f"--out {args.out}: use a file name ending in .pt (tensors) or .png (a grid).")
    device = _device(args.device)
    net_G, ckpt = _load_models(args.checkpoint, device, ema=not args.no_ema)
    _warn_early_ema(ckpt, args)
    num_classes = getattr(net_G, "num_classes", 0)
    labels = None
    if args.label is not None:
        if not num_classes:
            raise UserError(f"--label needs a conditional model, but {args.checkpoint} holds an unconditional "
                            f"{type(net_G).__name__}. Fix: drop --label, or train with --model cgan.")
        labels = torch.full((args.num_samples,), args.label, dtype=torch.long)
    elif num_classes:
        labels = torch.arange(args.num_samples) % num_classes
    samples = generate(net_G, args.num_samples, seed=args.seed, labels=labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".pt":
        payload = {"samples": samples, "step": int(ckpt["step"]), "model": type(net_G).__name__}
        if labels is not None:
            payload["labels"] = labels
        torch.save(payload, out)
    else:
        from .plotting import save_grid

        square = max(1, math.ceil(math.sqrt(args.num_samples)))
        nrow = args.nrow or (10 if num_classes and args.label is None else square)  # one row per 0..9 cycle
        save_grid(samples, out, nrow=nrow)
    what = f" of digit {args.label}" if args.label is not None else (" (digits 0-9 in turn)" if num_classes else "")
    _say(f"Wrote {args.num_samples} samples{what}, shape {tuple(samples.shape)}, from step {ckpt['step']:,} to {out}")
    return 0


# --------------------------------------------------------------------------- evaluate
def cmd_evaluate(args) -> int:
    from . import metrics
    from .classifier import HOLDOUT, get_classifier, mnist_splits
    from .data import DataNotFoundError

    if args.checkpoint and args.checkpoint_file and args.checkpoint != args.checkpoint_file:
        raise UserError(f"two checkpoints given ({args.checkpoint_file} and --checkpoint {args.checkpoint}). "
                        "Fix: pass one.")
    args.checkpoint = args.checkpoint or args.checkpoint_file
    if not args.checkpoint:
        raise UserError("no checkpoint given. Fix: python -m gan_tutorial evaluate CHECKPOINT (or --checkpoint PATH), "
                        "with a .pt file written by `train`.")
    device = _device(args.device)
    num_samples = args.num_samples or config.pick(500, 2000)
    if num_samples < 2:
        raise UserError("--num-samples must be at least 2 (a covariance needs two images).")
    net_G, ckpt = _load_models(args.checkpoint, device, ema=not args.no_ema)
    _warn_early_ema(ckpt, args)
    trained_on = ckpt.get("dataset") or "mnist"
    if (args.dataset or trained_on) != "mnist":
        return _evaluate_colour(args, net_G, ckpt, args.dataset or trained_on, device, num_samples)
    if trained_on != "mnist":
        raise UserError(f"{args.checkpoint} was trained on {trained_on}; the MNIST classifier measures digits only. "
                        f"Fix: drop --dataset mnist to measure it with Inception features against {trained_on}.")
    probe = generate(net_G, 2, seed=args.seed)
    if probe.dim() != 4 or probe.shape[1] != 1:
        raise UserError(f"{args.checkpoint} makes images of shape {tuple(probe.shape[1:])}; the MNIST classifier "
                        "measures grey-scale digits (1 channel). Fix: pass --dataset cifar10, celeba or folder:PATH "
                        "to measure it with Inception features against those images.")
    image_size = probe.shape[-1]
    # the real reference at the generator's size, so both sets are resized the same way
    _, holdout = mnist_splits(_load_mnist(image_size, args.download, verbose=False), verbose=False)
    try:
        clf = get_classifier(device=device)
    except DataNotFoundError as e:  # not reached in practice: the real images above were found
        raise UserError(str(e).splitlines()[0]) from None
    conditional = bool(getattr(net_G, "num_classes", 0))
    labels = torch.arange(num_samples) % net_G.num_classes if conditional else None
    fakes = generate(net_G, num_samples, seed=args.seed, labels=labels)
    result = metrics.evaluate_images(fakes, holdout.images, clf, labels=labels)
    half = HOLDOUT // 2
    reference = metrics.classifier_fid(holdout.images[:half], holdout.images[half:], clf)
    real_confidence = metrics.class_histogram(holdout.images, clf)["mean_confidence"]
    rarest = min(range(10), key=lambda d: result["counts"][d])
    weights = "EMA" if ckpt.get("G_ema") and not args.no_ema else "raw"
    _say(f"Evaluated {args.checkpoint} ({type(net_G).__name__}, {weights} weights, step {ckpt['step']:,}): "
         f"{num_samples:,} samples "
         f"vs {len(holdout):,} held-out real MNIST images, {image_size} px")
    _say(f"  classifier FID     {result['fid']:10.2f}   lower is better; two halves of the real held-out "
         f"images ({half:,} each) score {reference:.2f}")
    _say(" " * 34 + "(features of a small MNIST classifier: not comparable to Inception FID)")
    _say(f"  class KL           {result['kl_from_uniform']:10.3f}   nats from uniform: 0 = all ten digits "
         "equally common, 2.303 = a single digit")
    _say(f"  rarest digit share {result['min_fraction']:10.3f}   digit {rarest}; 0.100 = perfectly balanced")
    _say(f"  mean confidence    {result['mean_confidence']:10.3f}   average top class probability (real images: "
         f"{real_confidence:.3f})")
    if conditional:
        _say(f"  label accuracy     {result['label_accuracy']:10.3f}   samples read as the digit asked for "
             f"(real images: {clf.holdout_accuracy:.3f})")
    _say("  digit counts       " + "  ".join(f"{d}:{c}" for d, c in enumerate(result["counts"])))
    if args.json:
        record = {"checkpoint": str(args.checkpoint), "step": int(ckpt["step"]), "generator": type(net_G).__name__,
                  "recipe": ckpt.get("recipe"), "weights": weights,
                  "image_size": int(image_size), "seed": args.seed, "reference_fid_real_halves": reference,
                  "reference_mean_confidence": real_confidence,
                  "classifier_holdout_accuracy": clf.holdout_accuracy, **result}
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
        _say(f"Wrote {path}")
    return 0


def _real_colour_images(args, dataset: str, n: int, image_size: int, channels: int):
    """Up to ``n`` real images of ``dataset`` at the generator's size, uint8 ``(N, C, S, S)``, and their source."""
    from . import images
    from .data import DataChecksumError, DataNotFoundError

    common = dict(image_size=image_size, channels=channels, verbose=False)
    try:
        if dataset == "cifar10":   # its train split is in random order: the first n are a fair sample
            data = images.load_cifar10(split="train", download=args.download, limit=n, **common)
            return data.images, data.source
        if dataset == "celeba":
            files = images.load_celeba(download=args.download, stream=True, num_workers=0, **common)
        else:
            files = images.load_image_folder(dataset[len("folder:"):], stream=True, num_workers=0, **common)
        pick = torch.randperm(len(files), generator=torch.Generator().manual_seed(0))[:n].tolist()
        return torch.stack([files[i][0] for i in pick]), f"{files.source}; {len(pick):,} drawn with seed 0"
    except (DataNotFoundError, DataChecksumError, OSError) as e:   # OSError: a file that cannot be read
        raise UserError(" ".join(line.strip() for line in str(e).splitlines())) from None


def _evaluate_colour(args, net_G, ckpt, dataset: str, device, num_samples: int) -> int:
    """Frechet distance of Inception-v3 features (FID) between samples and real images of ``dataset``."""
    from . import fid
    from .metrics import frechet_distance_features

    if num_samples < 4:
        raise UserError("--num-samples must be at least 4 for an FID (two halves of the real images give the "
                        "reference).")
    probe = generate(net_G, 2, seed=args.seed)
    if probe.dim() != 4 or probe.shape[1] not in (1, 3):
        raise UserError(f"{args.checkpoint} makes data of shape {tuple(probe.shape[1:])}, not images; the FID "
                        "measures images (N, 1 or 3, H, W).")
    channels, image_size = int(probe.shape[1]), int(probe.shape[-1])
    try:
        extractor = fid.default_extractor(device)   # before the data: a missing extra or offline weights fail fast
    except fid.FID_ERRORS as e:
        raise UserError(" ".join(str(e).split())) from None
    real, source = _real_colour_images(args, dataset, num_samples, image_size, channels)
    if len(real) < 4:
        raise UserError(f"{dataset} gave only {len(real)} images; the FID needs at least 4. Fix: add images.")
    name = fid.extractor_name(extractor)
    fakes = generate(net_G, num_samples, seed=args.seed)
    features_fake, features_real = fid.extract_features(fakes, extractor), fid.extract_features(real, extractor)
    value = max(0.0, frechet_distance_features(features_fake, features_real))
    half = len(real) // 2
    reference = max(0.0, frechet_distance_features(features_real[:half], features_real[half : 2 * half]))
    weights = "EMA" if ckpt.get("G_ema") and not args.no_ema else "raw"
    label = "FID" if isinstance(extractor, fid.InceptionFeatures) else "Frechet distance"
    _say(f"Evaluated {args.checkpoint} ({type(net_G).__name__}, {weights} weights, step {ckpt['step']:,}): "
         f"{num_samples:,} samples vs {len(real):,} real images ({source})")
    _say(f"  {label:<18s} {value:10.2f}   lower is better; two halves of the real images ({half:,} each) "
         f"score {reference:.2f}")
    _say(f"  features: {name}, {features_real.shape[1]:,} numbers per image")
    _say("  (the estimate grows as the number of images shrinks: compare numbers made with the same N; "
         "papers use 50,000)")
    if args.json:
        record = {"checkpoint": str(args.checkpoint), "step": int(ckpt["step"]), "generator": type(net_G).__name__,
                  "recipe": ckpt.get("recipe"), "weights": weights, "dataset": dataset, "real_images": source,
                  "image_size": image_size, "channels": channels, "seed": args.seed, "extractor": name,
                  "num_features": int(features_real.shape[1]), "fid": value, "reference_fid_real_halves": reference,
                  "num_fake": num_samples, "num_real": int(len(real))}
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
        _say(f"Wrote {path}")
    return 0


# --------------------------------------------------------------------------- entry point
def main(argv=None, prog: str = "gan-tutorial") -> int:
    """Run the command line; returns 0 on success. User errors print one line and exit with status 2."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        try:
            config.fast_mode()   # a bad GAN_TUTORIAL_FAST is a one-line error here, not a traceback later
        except ValueError as e:
            raise UserError(str(e)) from None
        return args.func(args)
    except UserError as e:
        if e.every_rank or os.environ.get("RANK", "0") == "0":   # torchrun: the first process speaks for all
            print(f"{prog} {args.command}: error: {e}", file=sys.stderr)
        else:   # torchrun stops every process when one exits: leave the first one time to print
            time.sleep(3)
        raise SystemExit(2) from None


__all__ = ["main", "build_parser", "UserError"]
