"""DCGAN-64 training throughput: the package's loop (``Trainer``) against a plain hand-written loop.

The model is the DCGAN of the pytorch/examples repository at 64 px (nz = 100, ngf = ndf = 64,
3 channels): ``models.DCGANGenerator(100, 3, 64, width=64)`` and ``models.DCGANDiscriminator(3, 64,
width=64)`` have its layers, plus biases on the first and last discriminator convolutions and the
last generator convolution (negligible work), and return logits instead of a Sigmoid output.

Both loops do the same work per step: one discriminator step on a random real batch and a fake
batch, then one generator step on fresh noise (discriminator weights frozen), Adam (fused on CUDA),
non-saturating BCE-with-logits losses, the same autocast / GradScaler, memory layout and compile
setting. The plain loop has nothing else (no statistics, logging or callbacks), so the ratio is the
package loop's overhead. Images are random tensors on the device (speed does not depend on content).
Settings are timed in interleaved rounds (the median is printed), both loops timed the same way:
device synchronised, clock read, ``steps`` steps, device synchronised, clock read.

FLOP/s (CUDA only) assume 2.5 GFLOP per image per training step, an estimate rather than a count:
one forward pass of G, or of D, at 64 px is about 1.05e8 multiply-adds (0.21 GFLOP), a backward
pass about twice a forward. A step runs G forward twice and backward once (4 such units) and D
forward three times, backward through real and fake (4 units) and back to its input in the
generator step (about 1 unit): 12 units x 0.21 GFLOP = 2.5 GFLOP.

    python benchmarks/gpu_throughput.py                        # GPU: batch 256, every setting
    python benchmarks/gpu_throughput.py --device cpu --threads 2   # CPU: batch 16, fp32/bf16/fp16
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_tutorial import config, models  # noqa: E402
from gan_tutorial.train import Trainer  # noqa: E402

GFLOP_PER_IMAGE_STEP = 2.5
SETTINGS = {  # name: (amp, channels_last, compile)
    "fp32": (None, False, False),
    "bf16": ("bf16", False, False),
    "fp16": ("fp16", False, False),
    "bf16 + channels_last": ("bf16", True, False),
    "bf16 + channels_last + compile": ("bf16", True, True),
}


def dcgan64(seed=0):
    torch.manual_seed(seed)
    return (models.DCGANGenerator(latent_dim=100, channels=3, image_size=64, width=64),
            models.DCGANDiscriminator(channels=3, image_size=64, width=64, norm="batch"))


def plain_loop(net_G, net_D, images, batch, device, amp, channels_last, compile):
    """A minimal DCGAN training step with the same work as the package's; returns ``step()``."""
    net_G, net_D = net_G.to(device), net_D.to(device)
    if channels_last:
        net_G.to(memory_format=torch.channels_last)
        net_D.to(memory_format=torch.channels_last)
    fused = {"fused": True} if device.type == "cuda" else {}
    opt_G = torch.optim.Adam(net_G.parameters(), lr=2e-4, betas=(0.5, 0.999), **fused)
    opt_D = torch.optim.Adam(net_D.parameters(), lr=2e-4, betas=(0.5, 0.999), **fused)
    scaler_G = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    scaler_D = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
    G = torch.compile(net_G) if compile else net_G
    D = torch.compile(net_D) if compile else net_D
    rng = torch.Generator(device).manual_seed(0)
    ones = torch.ones(batch, device=device)
    zeros = torch.zeros(batch, device=device)

    def step():
        real = images[torch.randint(images.shape[0], (batch,), device=device, generator=rng)]
        if channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), autocast():
            fake = G(torch.randn(batch, 100, device=device, generator=rng))
        opt_D.zero_grad(set_to_none=True)
        with autocast():
            loss_D = (F.binary_cross_entropy_with_logits(D(real), ones)
                      + F.binary_cross_entropy_with_logits(D(fake.float()), zeros))
        scaler_D.scale(loss_D).backward()
        scaler_D.step(opt_D)
        scaler_D.update()
        opt_G.zero_grad(set_to_none=True)
        net_D.requires_grad_(False)
        with autocast():
            loss_G = F.binary_cross_entropy_with_logits(D(G(torch.randn(batch, 100, device=device, generator=rng))), ones)
        scaler_G.scale(loss_G).backward()
        scaler_G.step(opt_G)
        scaler_G.update()
        net_D.requires_grad_(True)

    return step


def package_loop(net_G, net_D, images, batch, device, amp, channels_last, compile):
    trainer = Trainer(net_G, net_D, images, loss="non-saturating", num_steps=10**9, batch_size=batch, device=str(device),
                      amp=amp, channels_last=channels_last, compile=compile, lr_G=2e-4, lr_D=2e-4,
                      betas=(0.5, 0.999), progress=False, log_every=10**9, num_fixed=8)
    return lambda n: trainer.fit(trainer.step + n)


def timed(device, fn) -> float:
    sync = {"cuda": torch.cuda.synchronize, "mps": lambda: torch.mps.synchronize()}.get(device.type, lambda: None)
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def hardware(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{config.cpu_name()}, {torch.get_num_threads()} torch threads"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, nargs="+", help="batch sizes (default: 256 on a GPU, 16 on a CPU)")
    p.add_argument("--steps", type=int, help="timed steps per round (default: 50 on a GPU, 3 on a CPU)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds per setting (median reported)")
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS),
                   help="default: all on a GPU; fp32, bf16 and fp16 on a CPU (compile there takes minutes)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = config.get_device(args.device)
    gpu = device.type == "cuda"
    batches = args.batch or ([256] if gpu else [16])
    steps = args.steps or (50 if gpu else 3)
    settings = args.settings or (list(SETTINGS) if gpu else ["fp32", "bf16", "fp16"])
    print(f"device: {device} ({hardware(device)}); torch {torch.__version__}; {steps} steps x {args.rounds} rounds")
    rows = []
    for batch in batches:
        images = torch.rand(max(4 * batch, 256), 3, 64, 64, device=device) * 2 - 1
        for name in settings:
            amp, channels_last, compile = SETTINGS[name]
            loops = {"package": package_loop(*dcgan64(), images, batch, device, amp, channels_last, compile)}
            step = plain_loop(*dcgan64(), images, batch, device, amp, channels_last, compile)
            loops["plain"] = lambda n, step=step: [step() for _ in range(n)]
            for run in loops.values():
                run(3 if compile else 1)  # warm-up: allocation, kernel choice, compilation
            rates = {k: [] for k in loops}
            for _ in range(args.rounds):
                for k, run in loops.items():
                    rates[k].append(batch * steps / timed(device, lambda: run(steps)))
            pkg, plain = statistics.median(rates["package"]), statistics.median(rates["plain"])
            rows.append((batch, name, pkg, plain))
            print(f"  batch {batch}, {name}: package {pkg:.1f} img/s, plain {plain:.1f} img/s", flush=True)
    flops = " | TFLOP/s (package)" if gpu else ""
    print(f"\n| batch | setting | package loop (img/s) | plain loop (img/s) | package / plain{flops} |")
    print("|---|---|---|---|---|" + ("---|" if gpu else ""))
    for batch, name, pkg, plain in rows:
        extra = f" | {pkg * GFLOP_PER_IMAGE_STEP / 1e3:.1f}" if gpu else ""
        print(f"| {batch} | {name} | {pkg:.1f} | {plain:.1f} | {pkg / plain:.1%}{extra} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
