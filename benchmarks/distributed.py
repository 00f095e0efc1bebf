"""Multi-process training speed: images/s of the 64 px colour DCGAN on 1 and on 2 processes (DDP).

Each run starts its processes afresh (torch.multiprocessing), trains the package's ``dcgan`` recipe
at 64 px with 3 channels on RANDOM uint8 images of that shape (the speed does not depend on what the
pixels show, and no data set is needed), warms up, then times ``--steps`` generator steps (each with
one discriminator step) on rank 0's clock. Images/s counts the real images the discriminator sees:
steps x batch per process x processes. Backend: gloo on the CPU, NCCL on GPUs (one per process).
Efficiency = (2-process images/s) / (2 x 1-process images/s); 1.0 is perfect scaling.

On the CPU each process gets ``--threads`` torch threads (default: the cores divided by 2), so the
2-process run uses twice the cores of the 1-process run, as two GPUs are twice one GPU.

    python benchmarks/distributed.py --steps 20 --batch-size 64
    python benchmarks/distributed.py --device cuda           # needs 2 GPUs for the 2-process figure
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_tutorial import config, distributed, recipes  # noqa: E402
from gan_tutorial.train import Trainer  # noqa: E402


def _worker(rank, world, port, args, out):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(args.threads)
    device = distributed.init(config.get_device(args.device))
    torch.manual_seed(0)
    net_G, net_D, recipe = recipes.build("dcgan", channels=3, image_size=64)
    images = torch.randint(0, 256, (max(1024, 2 * args.batch_size * world), 3, 64, 64), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))   # random pixels: only the shape matters
    trainer = Trainer(net_G, net_D, images, recipe.config(num_steps=10**9, batch_size=args.batch_size, seed=0,
                      progress=False, device=str(device), log_every=10**9, num_fixed=1))
    trainer.fit(args.warmup)          # first steps allocate memory and pick kernels
    before = trainer.elapsed
    trainer.fit(args.warmup + args.steps)   # the last step reads rank 0's clock (after a device sync)
    seconds = trainer.elapsed - before
    if rank == 0:
        Path(out).write_text(f"{args.steps * args.batch_size * world / seconds}")
    distributed.shutdown()


def images_per_second(world: int, args) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rate")
        torch.multiprocessing.spawn(_worker, args=(world, port, args, out), nprocs=world, join=True)
        return float(Path(out).read_text())


def hardware(device: torch.device) -> str:
    line = f"CPU: {config.cpu_name()}, {os.cpu_count()} logical cores"
    if device.type == "cuda":
        line += "; GPUs: " + ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return line


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20, help="timed generator steps (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--batch-size", type=int, default=64, help="images per process per step (default 64)")
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="torch threads per process (default: half the cores)")
    p.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per process)")
    args = p.parse_args(argv)
    device = config.get_device(args.device)
    backend = distributed.backend_for(device)
    print(hardware(device))
    print(f"torch {torch.__version__}, backend {backend}, {args.threads} torch thread(s) per process, "
          f"DCGAN (recipe 'dcgan', width 32) at 64 px x 3 channels on random uint8 images, "
          f"batch {args.batch_size} per process, {args.warmup} warm-up + {args.steps} timed steps")
    one = images_per_second(1, args)
    print(f"1 process:   {one:8.1f} images/s")
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        print("2 processes: skipped (NCCL needs one GPU per process; this machine has 1)")
        return 0
    two = images_per_second(2, args)
    print(f"2 processes: {two:8.1f} images/s")
    print(f"efficiency:  {two / (2 * one):8.2f}   (2-process images/s / (2 x 1-process images/s); 1.00 = perfect)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
