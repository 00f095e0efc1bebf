"""Every MNIST recipe trained for the same wall-clock budget through the command line, then scored:
the figures behind ``python -m gan_tutorial train --list``, and the tuning tries behind each recipe.

Each try runs ``python -m gan_tutorial train --model NAME --time-budget B`` (plus the try's
overrides), then ``evaluate --num-samples 5000`` on the result: classifier-feature FID against the
2,000 held-out real digits, the rarest digit's share, and label accuracy for conditional recipes.
Runs that keep an EMA of the generator are scored twice from the same checkpoint, with the EMA
weights and with the raw ones (``--no-ema``): the effect of EMA, same run. Every try is printed,
not only the winner.

    GAN_TUTORIAL_DATA=DIR python benchmarks/recipes.py                       # the registry's recipes
    GAN_TUTORIAL_DATA=DIR python benchmarks/recipes.py --tries tuning        # the tuning sweep
    GAN_TUTORIAL_DATA=DIR python benchmarks/recipes.py --parallel 2 --threads 1   # two at a time

Time is wall-clock: on a shared machine run tries side by side (``--parallel``) so that the ones
compared share the same load, or compare at equal work with ``--equal-steps``: each recipe then
trains for the number of generator steps an idle 2-core CPU made in 180 s (``IDLE_180S_STEPS``),
whatever the machine's load.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# (label, recipe, extra `train` arguments). "registry" trains each recipe as the registry defines it.
TRIES = {
    "registry": [(name, name, []) for name in ("mlp", "dcgan", "cgan", "wgan-gp")],
    # Each EMA run is scored with its EMA and its raw weights: the raw weights of "X EMA 0.999" are
    # exactly recipe X without EMA (the average does not change training).
    "tuning": [
        ("mlp EMA 0.999", "mlp", ["--lr", "2e-4", "--ema-decay", "0.999"]),
        ("mlp lr 4e-4 EMA 0.999", "mlp", ["--lr", "4e-4", "--ema-decay", "0.999"]),
        ("dcgan EMA 0.999", "dcgan", ["--lr", "2e-4", "--ema-decay", "0.999"]),
        ("cgan EMA 0.999", "cgan", ["--lr", "4e-4", "--ema-decay", "0.999"]),
        ("wgan-gp EMA 0.999", "wgan-gp", ["--lr", "5e-4", "--ema-decay", "0.999"]),
    ],
}


# Generator steps an idle 2-core CPU (2 torch threads) made in 180 s of training, measured with the
# recipes' nets and batch size 64 (README): the budget of --equal-steps.
IDLE_180S_STEPS = {"mlp": 7174, "dcgan": 3628, "cgan": 9376, "cgan-concat": 9376, "wgan-gp": 2209,
                   "wgan-gp-conv": 669}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tries", default="registry", help="'registry', 'tuning', or comma-separated labels of either")
    p.add_argument("--budget", type=float, default=180.0, help="seconds of training per try (default 180)")
    p.add_argument("--equal-steps", action="store_true",
                   help="train each recipe for IDLE_180S_STEPS[recipe] generator steps instead of --budget seconds")
    p.add_argument("--num-samples", type=int, default=5000, help="generated images scored per try")
    p.add_argument("--parallel", type=int, default=1, help="tries run at the same time (default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per try (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "gan_tutorial_recipes"),
                   help="folder for each try's checkpoint, samples and JSON, and results.json")
    return p.parse_args(argv)


def _cli(args, env, log):
    cmd = [sys.executable, "-m", "gan_tutorial", *args]
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, check=True)


def run_try(label, recipe, extra, args):
    folder = Path(args.out) / label.replace(" ", "_").replace("(", "").replace(")", "").replace(",", "")
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = folder / f"{recipe}.pt"
    if ckpt.exists():
        ckpt.unlink()
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    log = folder / "log.txt"
    log.write_text("")
    start = time.perf_counter()
    budget = (["--steps", str(IDLE_180S_STEPS[recipe])] if args.equal_steps
              else ["--time-budget", str(args.budget), "--steps", str(10**9)])
    _cli(["train", "--model", recipe, *budget, "--out", str(folder),
          "--device", "cpu", "--seed", str(args.seed), "--checkpoint-every", str(10**9), *extra], env, log)
    wall = time.perf_counter() - start
    row = {"label": label, "recipe": recipe, "args": " ".join(extra), "train_wall_s": round(wall, 1)}
    for weights in ("ema", "raw"):
        out = folder / f"eval_{weights}.json"
        _cli(["evaluate", "--checkpoint", str(ckpt), "--num-samples", str(args.num_samples), "--device", "cpu",
              "--json", str(out)] + (["--no-ema"] if weights == "raw" else []), env, log)
        result = json.loads(out.read_text())
        row.update({"step": result["step"], "classifier_acc": result["classifier_holdout_accuracy"],
                    "fid_real_halves": result["reference_fid_real_halves"]})
        row[weights] = {"weights": result["weights"], "fid": round(result["fid"], 2),
                        "rarest_share": round(result["min_fraction"], 4),
                        "label_accuracy": result.get("label_accuracy")}
        if result["weights"] == "raw" and weights == "ema":  # no EMA kept: one evaluation is enough
            row["raw"] = row.pop("ema")
            break
    return row


def fmt(row):
    def part(r):
        if r is None:
            return f"{'':>7s} {'':>7s} {'':>7s}"
        acc = f"{100 * r['label_accuracy']:6.1f}%" if r.get("label_accuracy") is not None else f"{'':>7s}"
        return f"{r['fid']:7.2f} {100 * r['rarest_share']:6.1f}% {acc}"
    return (f"{row['label']:28s} {row['step']:>7,d} {part(row.get('ema'))} | {part(row.get('raw'))}")


def main(argv=None):
    args = parse_args(argv)
    if args.tries in TRIES:
        tries = TRIES[args.tries]
    else:
        known = {t[0]: t for group in TRIES.values() for t in group}
        tries = [known[label.strip()] for label in args.tries.split(",")]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    each = "the steps of 180 s on an idle 2-core CPU" if args.equal_steps else f"{args.budget:.0f} s of training"
    print(f"{len(tries)} tries, {each} each, {args.parallel} at a time, "
          f"{args.threads or 'default'} torch threads each, os.cpu_count() {os.cpu_count()}", flush=True)
    with ThreadPoolExecutor(args.parallel) as pool:
        futures = [pool.submit(run_try, label, recipe, extra, args) for label, recipe, extra in tries]
        rows = []
        for f in futures:
            rows.append(f.result())
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'try':28s} {'G steps':>7s} {'EMA: FID':>7s} {'rarest':>7s} {'labels':>7s} | "
          f"{'raw: FID':>7s} {'rarest':>7s} {'labels':>7s}")
    for row in rows:
        print(fmt(row))
    print(f"(FID of two halves of the held-out real digits: {rows[0]['fid_real_halves']:.2f}; classifier held-out "
          f"accuracy {100 * rows[0]['classifier_acc']:.1f}%)")
    (Path(args.out) / "results.json").write_text(json.dumps({"budget_s": args.budget, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
