"""MLP GAN vs DCGAN on MNIST for the same wall-clock budget: quality per minute on a CPU.

Trains each model with the settings notebooks 02 and 03 use, for ``--budget`` seconds of training
(default 180), then reports steps done, steps/s, the classifier-feature FID against real images,
the smallest class share (the classifier's class histogram of the samples; under 3 % means a digit
is nearly missing) and writes a fixed-noise sample grid per model as PNG into ``--out``.

    GAN_TUTORIAL_DATA=DIR python benchmarks/mnist_quality.py --budget 180 --threads 2

Time is wall-clock: run it on a quiet machine. Training stops at the first step after the
budget is spent (``train_gan(time_budget=...)``); classifier training and scoring are not counted.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

# Settings shared with the notebooks (02_mlp_gan_mnist, 03_dcgan): keep them in step.
SETTINGS = {
    "mlp": dict(model_kwargs={}, batch_size=64, channels_last=False),
    "dcgan": dict(model_kwargs={"width": 32}, batch_size=64, channels_last=True),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=180.0, help="seconds of training per model (default 180)")
    p.add_argument("--models", nargs="+", default=["mlp", "dcgan"], choices=sorted(SETTINGS))
    p.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "gan_tutorial_mnist_quality"),
                   help="folder for the sample grids (PNG) and results.json")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-eval", type=int, default=5000, help="generated images per measurement")
    p.add_argument("--max-steps", type=int, default=10**9, help="stop earlier after this many steps")
    return p.parse_args(argv)


def run_one(name, mnist, real, classifier, args):
    from gan_tutorial import metrics, models, plotting, train_gan

    s = SETTINGS[name]
    torch.manual_seed(args.seed)
    net_G, net_D, recipe = models.build_models(name, **s["model_kwargs"])
    recipe = {k: v for k, v in recipe.items() if k != "model"}
    start = time.perf_counter()
    trainer = train_gan(net_G, net_D, mnist, **recipe, num_steps=args.max_steps, batch_size=s["batch_size"],
                        time_budget=args.budget, seed=args.seed, device=args.device, progress=False,
                        log_every=100, channels_last=s["channels_last"])
    seconds = time.perf_counter() - start
    torch.manual_seed(args.seed)
    fake = trainer.sample(args.num_eval)
    fid = metrics.classifier_fid(fake, real, classifier)
    hist = metrics.class_histogram(fake, classifier)
    out = Path(args.out)
    plotting.save_grid(trainer.sample()[:64], out / f"{name}_fixed_noise.png", nrow=8)
    plotting.save_grid(fake[:100], out / f"{name}_random.png", nrow=10)
    return {"model": name, "steps": trainer.step, "seconds": round(seconds, 1),
            "steps_per_s": round(trainer.step / seconds, 2), "batch_size": s["batch_size"],
            "params_G": models.count_parameters(net_G), "params_D": models.count_parameters(net_D),
            "fid": round(fid, 2), "min_class_share": round(float(hist["min_fraction"]), 4),
            "class_shares": [round(float(f), 3) for f in hist["fractions"]],
            "kl_from_uniform": round(float(hist["kl_from_uniform"]), 4)}


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from gan_tutorial import config, data, metrics
    from gan_tutorial.classifier import get_classifier

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = config.get_device(args.device)
    mnist = data.load_mnist(verbose=False, device=device)
    print(f"data: {mnist.source.split(', from')[0]} | device {device} | torch threads {torch.get_num_threads()} "
          f"| os.cpu_count() {os.cpu_count()} | budget {args.budget:.0f} s per model")
    classifier = get_classifier(device=device, data=mnist, verbose=False)
    print(f"classifier: {100 * classifier.holdout_accuracy:.1f}% held-out accuracy")
    n = min(args.num_eval, len(mnist) // 2)
    real = mnist.images[:n].cpu()
    floor = metrics.classifier_fid(mnist.images[len(mnist) - n:].cpu(), real, classifier)
    print(f"reference classifier-FID, two disjoint sets of {n} real images: {floor:.2f}")

    rows = []
    for name in args.models:
        row = run_one(name, mnist, real, classifier, args)
        rows.append(row)
        print(json.dumps(row), flush=True)

    print(f"\n{'model':6s} | {'steps':>6s} | {'steps/s':>7s} | {'FID':>7s} | {'min class share':>15s}")
    for r in rows:
        print(f"{r['model']:6s} | {r['steps']:>6d} | {r['steps_per_s']:>7.2f} | {r['fid']:>7.2f} | "
              f"{r['min_class_share']:>15.1%}")
    (out / "results.json").write_text(json.dumps({"budget_s": args.budget, "fid_real_vs_real": floor,
                                                  "threads": torch.get_num_threads(), "rows": rows}, indent=2))
    print(f"sample grids and results.json written to {out}")
    return rows


if __name__ == "__main__":
    main()
