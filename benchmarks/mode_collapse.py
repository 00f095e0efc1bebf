"""Mode collapse and WGAN-GP, measured (the numbers behind notebook 05).

1. 2-D toys: a plain GAN (non-saturating loss) and WGAN-GP on the ring of 8 and the grid of 25
   Gaussians, several seeds, the same nets and number of generator steps: modes covered and share
   of high-quality samples (within 3 sigma of a mode), per seed and the mean, with the time per run.
2. MNIST: the MLP GAN of notebook 02 against WGAN-GP at the same wall-clock budget (``--budget``
   seconds of training each), compared with the classifier Fréchet distance (lower is better).

    python benchmarks/mode_collapse.py                       # everything (about 14 min on 2 idle CPU cores)
    python benchmarks/mode_collapse.py --skip-mnist --seeds 0 1 2 3 4
    python benchmarks/mode_collapse.py --skip-toys --budget 60 --dcgan
    python benchmarks/mode_collapse.py --sweep --seeds 0 1   # why the toy recipes use lr 3e-3 and lambda 1
    python benchmarks/mode_collapse.py --skip-toys --mnist-sweep --threads 1   # other WGAN-GP settings on MNIST

Targets (2 CPU cores): WGAN-GP covers 8/8 ring modes with >= 80 % high-quality samples within 60 s
of training and >= 20 of the 25 grid modes; on MNIST it beats the MLP GAN's classifier FID at 180 s.
The script prints whether each target was met. ``--json FILE`` also writes every number.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_tutorial import config, data, losses, metrics, models, recipes, toy2d  # noqa: E402
from gan_tutorial.train import Trainer  # noqa: E402

# --mnist-sweep: other WGAN-GP settings on MNIST, each with the same budget
# (name, changes to the "wgan-gp" recipe).
MNIST_SWEEP = [("k=5, lr 1e-3", dict(lr_G=1e-3, lr_D=1e-3)), ("k=3, lr 1e-3", dict(k=3, lr_G=1e-3, lr_D=1e-3)),
               ("k=2", dict(k=2)), ("k=1", dict(k=1)), ("k=1, lr_D 4 x lr_G", dict(k=1, lr_G=2e-4, lr_D=8e-4))]
NUM_EVAL = 2000          # generated and real images per classifier-FID estimate
# The recipe sweep on the ring: (method, lambda of the gradient penalty, learning rate of both nets).
SWEEP = [("gan", None, 1e-3), ("gan", None, 3e-3), ("wgan-gp", 10.0, 1e-3), ("wgan-gp", 1.0, 1e-3),
         ("wgan-gp", 10.0, 3e-3), ("wgan-gp", 1.0, 3e-3), ("wgan-gp", 0.1, 3e-3)]


def toy_part(args) -> dict:
    print(f"== 2-D toys: seeds {args.seeds}; ring: {args.steps} generator steps or {args.toy_budget:.0f} s of "
          f"training per run, whichever comes first; grid: {args.grid_steps} steps per run")
    rows = toy2d.mode_collapse_experiment(methods=("gan", "wgan-gp"), mixtures=("ring-8",), seeds=args.seeds,
                                          num_steps=args.steps, time_budget=args.toy_budget)
    rows += toy2d.mode_collapse_experiment(methods=("gan", "wgan-gp"), mixtures=("grid-25",), seeds=args.seeds,
                                           num_steps=args.grid_steps)
    print()
    print(toy2d.format_table(rows))
    summary = {(s["mixture"], s["method"]): s for s in toy2d.summarise(rows)}
    ring = [r for r in rows if r["mixture"] == "ring-8" and r["method"] == "wgan-gp"]
    grid = [r for r in rows if r["mixture"] == "grid-25" and r["method"] == "wgan-gp"]
    checks = {
        "ring-8: WGAN-GP 8/8 modes and >= 80 % high quality within 60 s (every seed)":
            all(r["modes_covered"] == 8 and r["high_quality"] >= 0.8 and r["seconds"] <= 60 for r in ring),
        "grid-25: WGAN-GP >= 20 modes (every seed)": all(r["modes_covered"] >= 20 for r in grid),
        "grid-25: WGAN-GP >= 20 modes (mean over seeds)": summary[("grid-25", "wgan-gp")]["modes_mean"] >= 20,
    }
    return {"rows": rows, "summary": list(summary.values()), "checks": checks}


def sweep_part(args) -> dict:
    """The toy recipes' learning rate and lambda, varied one at a time on the ring (same steps, seeds)."""
    print(f"== recipe sweep on ring-8: seeds {args.seeds}, {args.steps} generator steps per run")
    print("| method | lambda | learning rate | modes covered (mean, min) | high-quality samples | time per run |")
    print("|---|---|---|---|---|---|")
    out = []
    for method, gp_weight, lr in SWEEP:
        overrides = dict(lr_G=lr, lr_D=lr)
        if gp_weight is not None:
            overrides["loss"] = losses.WassersteinLoss(gp_weight=gp_weight)
        rows = toy2d.mode_collapse_experiment(methods=(method,), mixtures=("ring-8",), seeds=args.seeds,
                                              num_steps=args.steps, verbose=False, **overrides)
        s = toy2d.summarise(rows)[0]
        print(f"| {method} | {gp_weight or '-'} | {lr:g} | {s['modes_mean']:.1f}/8 ({s['modes_min']}) | "
              f"{100 * s['high_quality_mean']:.1f} % | {s['seconds_mean']:.1f} s |", flush=True)
        out.append({"method": method, "gp_weight": gp_weight, "lr": lr, **s})
    return {"rows": out}


def train_for(name: str, net_G, net_D, settings: dict, mnist, real, classifier, budget: float, seed: int) -> dict:
    torch.manual_seed(seed)
    trainer = Trainer(net_G, net_D, mnist, seed=seed, num_steps=10**9, progress=False, log_every=50, **settings)
    curve = []
    for quarter in (1, 2, 3, 4):  # train in quarters of the budget; measuring time is not counted
        trainer.cfg.time_budget = budget * quarter / 4
        trainer.fit()
        fid = metrics.classifier_fid(trainer.sample(NUM_EVAL), real, classifier)
        curve.append({"seconds": round(trainer.elapsed, 1), "step": trainer.step, "fid": fid})
        print(f"  {name:>16}: {trainer.elapsed:6.1f} s, {trainer.step:6d} steps, classifier FID {fid:7.2f}",
              flush=True)
    return {"name": name, "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
            "curve": curve, "fid": curve[-1]["fid"], "steps": trainer.step, "seconds": trainer.elapsed}


def mnist_part(args) -> dict:
    from gan_tutorial.classifier import get_classifier

    device = config.get_device()
    print(f"== MNIST: {args.budget:.0f} s of training each on {device}, classifier FID on {NUM_EVAL} images")
    mnist = data.load_mnist(device=device)
    classifier = get_classifier(device)
    real = mnist.images[:NUM_EVAL]
    runs = []
    net_G, net_D, recipe = recipes.build("mlp")
    runs.append(train_for("MLP GAN", net_G, net_D, recipe.train_kwargs(), mnist, real, classifier, args.budget,
                          args.seed))
    net_G, net_D, recipe = recipes.build("wgan-gp")
    runs.append(train_for("WGAN-GP (MLP)", net_G, net_D, recipe.train_kwargs(), mnist, real, classifier,
                          args.budget, args.seed))
    if args.dcgan:
        net_G, net_D, recipe = recipes.build("wgan-gp-conv")
        runs.append(train_for("WGAN-GP (DCGAN)", net_G, net_D, recipe.train_kwargs(), mnist, real, classifier,
                              args.budget, args.seed))
    if args.mnist_sweep:
        for label, changes in MNIST_SWEEP:
            net_G, net_D, recipe = recipes.build("wgan-gp")
            settings = recipe.train_kwargs(**changes)
            runs.append(train_for(f"WGAN-GP (MLP), {label}", net_G, net_D, settings, mnist, real, classifier,
                                  args.budget, args.seed))
    print()
    print("| model | training time | generator steps | classifier FID |")
    print("|---|---|---|---|")
    for r in runs:
        print(f"| {r['name']} | {r['seconds']:.0f} s | {r['steps']} | {r['fid']:.2f} |")
    checks = {f"MNIST: WGAN-GP (MLP) beats the MLP GAN at {args.budget:.0f} s": runs[1]["fid"] < runs[0]["fid"]}
    return {"runs": runs, "checks": checks}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the 2-D runs (default 0 1 2)")
    p.add_argument("--steps", type=int, default=2000, help="generator steps per ring (and sweep) run (default 2000)")
    p.add_argument("--toy-budget", type=float, default=60.0, help="seconds of training per ring run (default 60)")
    p.add_argument("--grid-steps", type=int, default=6000, help="generator steps per grid run (default 6000)")
    p.add_argument("--budget", type=float, default=180.0, help="seconds of MNIST training per model (default 180)")
    p.add_argument("--seed", type=int, default=0, help="seed of the MNIST runs")
    p.add_argument("--dcgan", action="store_true", help="also train the 'wgan-gp-conv' recipe (DCGAN critic) on MNIST")
    p.add_argument("--mnist-sweep", action="store_true", help="also train other WGAN-GP settings on MNIST")
    p.add_argument("--sweep", action="store_true", help="also sweep the toy recipes' learning rate and lambda")
    p.add_argument("--skip-toys", action="store_true")
    p.add_argument("--skip-mnist", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", type=Path, default=None, help="also write all numbers to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{config.describe()}\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}\n")
    results, checks = {}, {}
    start = time.perf_counter()
    if not args.skip_toys:
        results["toys"] = toy_part(args)
        checks.update(results["toys"]["checks"])
        print()
    if args.sweep:
        results["sweep"] = sweep_part(args)
        print()
    if not args.skip_mnist:
        results["mnist"] = mnist_part(args)
        checks.update(results["mnist"]["checks"])
        print()
    print(f"total time {time.perf_counter() - start:.0f} s")
    for text, ok in checks.items():
        print(f"[{'met' if ok else 'NOT met'}] {text}")
    if args.json:
        for row in results.get("toys", {}).get("rows", []):
            row.pop("samples", None)
        results["checks"] = checks
        args.json.write_text(json.dumps(results, indent=1, default=str))
        print(f"numbers written to {args.json.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
