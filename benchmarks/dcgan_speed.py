"""DCGAN training speed on this machine: the width and memory-layout choices of notebook 03.

Times generator steps (each with one discriminator step) of the MNIST DCGAN for a few settings,
interleaved in rounds so that a change in machine load hits every setting alike, and prints the
median steps/s of each and its ratio to the notebook's choice (width 32, ``channels_last=True``).

    GAN_TUTORIAL_DATA=DIR python benchmarks/dcgan_speed.py --threads 2 --rounds 5 --steps 40
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_tutorial import config, data, recipes  # noqa: E402
from gan_tutorial.train import Trainer  # noqa: E402

SETTINGS = {  # name: (width, channels_last); the first is notebook 03's choice
    "width 32, channels_last": (32, True),
    "width 32, default layout": (32, False),
    "width 64, channels_last": (64, True),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per setting (default 5)")
    p.add_argument("--steps", type=int, default=40, help="generator steps per round (default 40)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{config.describe()}\n{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    mnist = data.load_mnist(device=args.device, verbose=False)
    trainers = {}
    for name, (width, channels_last) in SETTINGS.items():
        torch.manual_seed(0)
        net_G, net_D, recipe = recipes.build("dcgan", width=width)
        trainers[name] = Trainer(net_G, net_D, mnist, recipe.config(num_steps=10**9, batch_size=64, seed=0, progress=False,
                                 channels_last=channels_last, device=args.device))
        trainers[name].fit(5)  # warm-up: first steps allocate memory and pick kernels
    rates = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            before_steps, before_time = trainer.step, trainer.elapsed
            trainer.fit(trainer.step + args.steps)
            rates[name].append((trainer.step - before_steps) / (trainer.elapsed - before_time))
    base = statistics.median(rates[next(iter(SETTINGS))])
    print("\n| setting | steps/s (median of rounds) | time per step vs notebook 03's choice |")
    print("|---|---|---|")
    for name, values in rates.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.1f} | {base / med:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
