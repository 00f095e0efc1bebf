"""Memory of training on a large image folder: streamed from disk vs held as uint8, at two folder sizes.

Builds a CelebA-shaped folder (``celeba/img_align_celeba/*.jpg``, 178 x 218 JPEGs) of ``--images``
files in a scratch directory: ``--distinct`` different pictures (smooth random colours), repeated
as hard links up to the size asked for (the memory of reading files does not depend on what they
show; the links keep the disk use small). Then, for each folder size and each way of holding the
data, a fresh process loads it with ``gan_tutorial.images.load_celeba`` (``limit=N``) and trains the
``dcgan`` recipe at 64 px for ``--steps`` steps, and reports

* the peak resident memory of the training process, and of its largest file-reading worker (forked
  from it, so much of that is pages it shares with the training process),
* on CUDA, the peak memory allocated on the GPU (``torch.cuda.max_memory_allocated``),
* the bytes of the data set held in memory, beside the same images as float32.

On the CPU the "device" is the process's memory. The targets: streamed, the footprint does not grow
with the folder; held in memory, uint8 takes 1/4 of float32.

    python benchmarks/memory.py                                  # 10,000 and 202,599 images
    python benchmarks/memory.py --images 2000 20000 --modes stream --steps 5
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_tutorial import config, images, recipes  # noqa: E402
from gan_tutorial.train import Trainer  # noqa: E402

CELEBA_SIZE = 202_599


def make_folder(root: Path, n: int, distinct: int) -> Path:
    """``root/celeba/img_align_celeba/000001.jpg ...``: ``n`` files, ``distinct`` pictures, the rest hard links."""
    from PIL import Image

    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.iterdir()))
    rng = np.random.default_rng(0)
    for i in range(have, n):
        path = folder / f"{i + 1:06d}.jpg"
        if i < distinct:
            small = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
            small.resize((178, 218), Image.BICUBIC).save(path, quality=90)
        else:
            source = folder / f"{i % distinct + 1:06d}.jpg"
            try:
                os.link(source, path)
            except OSError:           # a file system without hard links: copy
                path.write_bytes(source.read_bytes())
    return root


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # kilobytes on Linux


def _workers_peak_mb() -> float | None:
    """The largest peak resident memory (VmHWM) of this process's live children: the DataLoader workers."""
    peaks = []
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            peaks += [int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")]
    return max(peaks, default=None)


def measure(root: str, n: int, stream: bool, steps: int, batch_size: int, device: str, workers: int | None) -> dict:
    """Load ``n`` images from ``root`` and train; run in a fresh process (peak memory is per process)."""
    device = config.get_device(device)
    start = time.perf_counter()
    data = images.load_celeba(root, image_size=64, limit=n, stream=stream, num_workers=workers, verbose=False)
    loaded = time.perf_counter() - start
    held = 0 if stream else data.images.nbytes
    torch.manual_seed(0)
    net_G, net_D, recipe = recipes.build("dcgan", channels=3, image_size=64)
    trainer = Trainer(net_G, net_D, data, recipe.config(num_steps=steps, batch_size=batch_size, seed=0,
                                                        progress=False, device=str(device), num_fixed=16))
    start = time.perf_counter()
    trainer.fit()
    trained = time.perf_counter() - start
    reader_peak = _workers_peak_mb()    # streamed: the readers are still alive (persistent workers)
    return {"images": n, "stream": stream, "load_s": loaded, "train_s": trained, "held_bytes": held,
            "float32_bytes": n * 3 * 64 * 64 * 4, "peak_rss_mb": _peak_mb(),
            "worker_peak_rss_mb": reader_peak,
            "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, nargs="+", default=[10_000, CELEBA_SIZE], help="folder sizes to measure")
    p.add_argument("--modes", nargs="+", choices=["stream", "memory"], default=["stream", "memory"])
    p.add_argument("--steps", type=int, default=20, help="training steps per run (default 20)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--distinct", type=int, default=500, help="different pictures in the folder (default 500)")
    p.add_argument("--workers", type=int, default=None, help="file-reading processes (default: the package's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dir", default=None, help="scratch folder for the images (default: a temporary one)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:   # one measurement in this fresh process
        print(json.dumps(measure(**json.loads(args.child))))
        return 0

    from distributed import hardware   # benchmarks/distributed.py

    device = config.get_device(args.device)
    print(hardware(device))
    print(f"torch {torch.__version__}; dcgan recipe at 64 px x 3 channels, batch {args.batch_size}, {args.steps} "
          f"steps on {device}; each run in a fresh process")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        start = time.perf_counter()
        make_folder(Path(tmp), max(args.images), args.distinct)
        print(f"folder of {max(args.images):,} JPEGs (178 x 218; {args.distinct} distinct pictures, the rest hard "
              f"links) written in {time.perf_counter() - start:.0f} s\n")
        print(f"{'images':>8} {'held as':>14} {'data in memory':>15} {'as float32':>11} {'peak RSS':>10} "
              f"{'worker peak':>12} {'GPU peak':>9} {'load':>7} {'train':>7}")
        results = []
        for mode in args.modes:
            for n in args.images:
                spec = dict(root=tmp, n=n, stream=mode == "stream", steps=args.steps, batch_size=args.batch_size,
                            device=str(device), workers=args.workers)
                run = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                     text=True)
                if run.returncode:
                    print(run.stderr[-3000:], file=sys.stderr)
                    return run.returncode
                r = json.loads(run.stdout.strip().splitlines()[-1])
                results.append(r)
                gpu = f"{r['cuda_peak_mb']:,.0f} MB" if r["cuda_peak_mb"] is not None else "-"
                workers = f"{r['worker_peak_rss_mb']:,.0f} MB" if r["worker_peak_rss_mb"] is not None else "-"
                print(f"{n:>8,} {'files (stream)' if r['stream'] else 'uint8':>14} {r['held_bytes'] / 1e6:>12,.0f} MB "
                      f"{r['float32_bytes'] / 1e6:>8,.0f} MB {r['peak_rss_mb']:>7,.0f} MB {workers:>12} "
                      f"{gpu:>9} {r['load_s']:>6.0f}s {r['train_s']:>6.0f}s", flush=True)
    small, large = min(args.images), max(args.images)
    by = {(r["images"], r["stream"]): r for r in results}
    if small != large and (small, True) in by:
        a, b = by[(small, True)], by[(large, True)]
        print(f"\nstreamed: peak RSS {b['peak_rss_mb']:,.0f} MB at {large:,} images vs {a['peak_rss_mb']:,.0f} MB at "
              f"{small:,} (ratio {b['peak_rss_mb'] / a['peak_rss_mb']:.2f} for {large / small:.0f}x the images)")
        if a["cuda_peak_mb"] is not None:
            print(f"streamed: GPU peak {b['cuda_peak_mb']:,.0f} MB vs {a['cuda_peak_mb']:,.0f} MB")
    for n in args.images:
        if (n, False) in by:
            r = by[(n, False)]
            print(f"held in memory, {n:,} images: uint8 {r['held_bytes'] / 1e6:,.0f} MB = "
                  f"{r['held_bytes'] / r['float32_bytes']:.2f} of float32 ({r['float32_bytes'] / 1e6:,.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
