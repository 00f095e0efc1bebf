"""Time the style-transfer pieces of notebook 06 on this machine.

    python benchmarks/style_transfer.py                  # 256 px, 150 loss evaluations of L-BFGS (full mode)
    python benchmarks/style_transfer.py --size 64 --steps 30 --threads 1
    python benchmarks/style_transfer.py --size 96 --steps 60 --optimizer adam --lr 0.05
    python benchmarks/style_transfer.py --notebook       # execute notebook 06 and time it (fast mode)

``--steps`` is the budget in loss evaluations (forward + backward passes), as in
``style.optimize_image``. For each run it prints wall-clock time and the process CPU time. On a
shared machine the wall time includes waiting for other jobs; with ``--threads 1`` the CPU time is
what the run costs one idle core, an upper bound for the wall time on a quiet machine with that many
cores free.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gan_tutorial import style


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def load_line() -> str:
    try:
        return "load average (1 min) {:.1f} on {} CPUs".format(os.getloadavg()[0], os.cpu_count())
    except OSError:  # pragma: no cover - not on every OS
        return f"{os.cpu_count()} CPUs"


def bench_transfer(size: int, steps: int, weights: str, optimizer: str, lr: float | None, tv_weight: float) -> None:
    content, style_img = style.sample_photo(size), style.painterly_texture(size)
    vgg = style.VGGFeatures(weights=weights)
    x = torch.rand(1, 3, size, size, requires_grad=True)
    for _ in range(2):  # warm-up, then one timed forward + backward
        _, wall, cpu = timed(lambda: sum(v.pow(2).mean() for v in vgg(x).values()).backward())
    print(f"one forward+backward at {size} px: wall {wall:.2f} s, CPU {cpu:.2f} s")
    (image, hist), wall, cpu = timed(lambda: style.style_transfer(
        content, style_img, vgg, steps=steps, optimizer=optimizer, lr=lr, tv_weight=tv_weight, progress=False))
    evals = len(hist["total"])
    print(f"style transfer {size} px, {evals} loss evaluations of {optimizer} ({vgg.source}): wall {wall:.1f} s, "
          f"CPU {cpu:.1f} s, {wall / evals:.2f} s/evaluation wall")
    final = hist["final"]
    print(f"  losses first -> returned image: content {hist['content'][0]:.4f} -> {final['content']:.4f}, "
          f"style {hist['style'][0]:.4f} -> {final['style']:.4f}, total {hist['total'][0]:.4f} -> {final['total']:.4f}")


def bench_notebook(fast: bool) -> None:
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, GAN_TUTORIAL_FAST="1" if fast else "0")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
               "--ExecutePreprocessor.timeout=3600", "--output-dir", tmp, "06_style_loss.ipynb"]
        start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, cwd=root / "notebooks", env=env, check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    mode = "fast" if fast else "full"
    print(f"notebook 06 ({mode} mode, executed by nbconvert): wall {time.perf_counter() - start:.1f} s, "
          f"CPU {cpu:.1f} s (kernel and nbconvert together)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=150, help="budget in loss evaluations")
    parser.add_argument("--optimizer", default="lbfgs", choices=["lbfgs", "adam"])
    parser.add_argument("--lr", type=float, default=None, help="learning rate (Adam; default 0.02)")
    parser.add_argument("--tv-weight", type=float, default=5.0, help="total-variation weight (notebook 06: 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--weights", default="auto", choices=["auto", "imagenet", "random"])
    parser.add_argument("--notebook", action="store_true", help="time the whole notebook instead")
    parser.add_argument("--full", action="store_true", help="with --notebook: full mode instead of fast")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for the notebook's kernel too
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {load_line()}")
    if args.notebook:
        bench_notebook(fast=not args.full)
    else:
        bench_transfer(args.size, args.steps, args.weights, args.optimizer, args.lr, args.tv_weight)
    print(f"after: {load_line()}")


if __name__ == "__main__":
    main()
