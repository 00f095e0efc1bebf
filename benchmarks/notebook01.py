"""Notebook 01's numbers: the 1-D GAN's fit, and the training loop's overhead on CPU.

1. **Loop overhead** (always): ``gan_tutorial.train_gan`` against a bare, hand-written PyTorch
   loop doing the same work -- same models, same initial weights, same sampler, batch size, Adam
   settings, losses and ``k`` -- timed alternately (bare, loop, bare, loop, ...) so both see the
   same machine load; the ratio loop/bare is computed per repeat and the median is reported.
   The target is a median ratio of at most 1.10 (10 % overhead). Both clocks are reported:
   wall time, and this process's CPU time. With one thread the CPU time is the work each loop
   does, unaffected by other programs taking turns on the cores, so the target is checked on it
   (``--clock wall`` to check wall time instead, on a quiet machine).
2. **1-D fit** (full mode, or ``--fit``): the notebook's GAN (its settings and its learning-rate
   decay; ``--no-decay`` for constant rates) on N(4, 0.5^2) for several seeds:
   |mean gap|, |std gap| and the 1-D Wasserstein distance between 4,000 generated and 4,000 data
   samples, next to the floor (two data samples of that size).

    python benchmarks/notebook01.py              # full mode: both parts
    GAN_TUTORIAL_FAST=1 python benchmarks/notebook01.py   # overhead only, fewer steps

One CPU thread by default, as in the notebook (these networks are tiny).
"""
from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch

from gan_tutorial import config, data, losses, models, toy, train_gan
from gan_tutorial.metrics import wasserstein_1d

# The settings notebook 01 uses for its 1-D GAN: keep them in step with it.
SETTINGS = dict(k=1, loss="non-saturating", lr_G=5e-4, lr_D=2e-3, betas=(0.0, 0.9), batch_size=256)
LATENT_DIM = 2


def make_models(seed: int = 0):
    torch.manual_seed(seed)
    net_G = models.MLPGenerator(LATENT_DIM, 1, (32, 32), activation="leaky_relu", batchnorm=False,
                                out_activation=None)
    net_D = models.MLPDiscriminator(1, (64, 64))
    return net_G, net_D


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=config.pick(200, 300), help="generator steps per timed run")
    p.add_argument("--repeats", type=int, default=config.pick(7, 21), help="timed pairs (bare, loop)")
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="clock the 10 %% target is checked on")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--fit", action=argparse.BooleanOptionalAction, default=not config.fast_mode(),
                   help="also train the 1-D GAN and report its fit (default: on in full mode)")
    p.add_argument("--fit-steps", type=int, default=4000, help="generator steps of the fit runs (as the notebook)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--no-decay", action="store_true", help="fit without the notebook's LinearLRDecay(0.05)")
    return p.parse_args(argv)


# --------------------------------------------------------------------------- overhead
def _clocks():
    gc.collect()  # start every timed run from the same state
    return time.perf_counter(), time.process_time()


def _since(start):
    wall, cpu = _clocks()
    return wall - start[0], cpu - start[1]


def bare_loop(num_steps: int, seed: int = 0) -> tuple[float, float]:
    """Algorithm 1 written out by hand, the way a short PyTorch script would; returns (wall, cpu) seconds."""
    net_G, net_D = make_models(seed)
    sampler = data.gaussian_1d(4.0, 0.5)
    gen = torch.Generator().manual_seed(seed)
    bs, k = SETTINGS["batch_size"], SETTINGS["k"]
    opt_G = torch.optim.Adam(net_G.parameters(), lr=SETTINGS["lr_G"], betas=SETTINGS["betas"])
    opt_D = torch.optim.Adam(net_D.parameters(), lr=SETTINGS["lr_D"], betas=SETTINGS["betas"])
    start = _clocks()
    for _ in range(num_steps):
        for _ in range(k):
            real = sampler(bs, generator=gen)                                   # (bs, 1)
            with torch.no_grad():
                fake = net_G(torch.randn(bs, LATENT_DIM, generator=gen))        # (bs, 1)
            loss_D = losses.d_loss(net_D(real), net_D(fake))
            opt_D.zero_grad(set_to_none=True)
            loss_D.backward()
            opt_D.step()
        loss_G = losses.g_loss_nonsaturating(net_D(net_G(torch.randn(bs, LATENT_DIM, generator=gen))))
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()
    return _since(start)


def package_loop(num_steps: int, seed: int = 0) -> tuple[float, float]:
    """The same training through ``train_gan`` (history every 50 steps, one snapshot at the end)."""
    net_G, net_D = make_models(seed)
    start = _clocks()
    train_gan(net_G, net_D, data.gaussian_1d(4.0, 0.5), num_steps=num_steps, device="cpu", seed=seed,
              progress=False, **SETTINGS)
    return _since(start)


def overhead(num_steps: int, repeats: int) -> dict:
    bare_loop(50), package_loop(50)  # warm-up: first-call costs (allocations, lazy imports)
    res = {clock: {"ratios": [], "bare": [], "loop": []} for clock in ("wall", "cpu")}
    for i in range(repeats):
        if i % 2 == 0:  # alternate which loop goes first, so neither always runs on a "fresh" core
            b, p = bare_loop(num_steps, seed=i), package_loop(num_steps, seed=i)
        else:
            p, b = package_loop(num_steps, seed=i), bare_loop(num_steps, seed=i)
        for j, clock in enumerate(("wall", "cpu")):
            res[clock]["bare"].append(b[j]), res[clock]["loop"].append(p[j]), res[clock]["ratios"].append(p[j] / b[j])
        print(f"  repeat {i + 1}/{repeats}: wall bare {b[0]:.3f} s, train_gan {p[0]:.3f} s (ratio {p[0] / b[0]:.3f}) | "
              f"cpu bare {b[1]:.3f} s, train_gan {p[1]:.3f} s (ratio {p[1] / b[1]:.3f})", flush=True)
    for r in res.values():
        r["median_ratio"] = statistics.median(r["ratios"])
        r["bare_ms_per_step"] = 1000 * statistics.median(r["bare"]) / num_steps
        r["loop_ms_per_step"] = 1000 * statistics.median(r["loop"]) / num_steps
    return res


# --------------------------------------------------------------------------- fit
def fit(num_steps: int, seed: int, num_eval: int = 4000, decay: bool = True) -> dict:
    net_G, net_D = make_models(seed)
    start = time.perf_counter()
    trainer = train_gan(net_G, net_D, data.gaussian_1d(4.0, 0.5), num_steps=num_steps, device="cpu", seed=seed,
                        progress=False, callbacks=[toy.LinearLRDecay(0.05)] if decay else [], **SETTINGS)
    seconds = time.perf_counter() - start
    torch.manual_seed(1000 + seed)
    fake = trainer.sample(num_eval).flatten()
    gen = torch.Generator().manual_seed(2000 + seed)
    real = data.gaussian_1d(4.0, 0.5)(num_eval, generator=gen).flatten()
    real_again = data.gaussian_1d(4.0, 0.5)(num_eval, generator=gen).flatten()
    return {"seed": seed, "seconds": seconds, "mean": fake.mean().item(), "std": fake.std().item(),
            "mean_gap": abs(fake.mean() - real.mean()).item(), "std_gap": abs(fake.std() - real.std()).item(),
            "w1": wasserstein_1d(fake, real), "w1_floor": wasserstein_1d(real, real_again)}


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"notebook 01 benchmark: {'fast' if config.fast_mode() else 'full'} mode, CPU, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}")
    ok = True
    if args.fit:
        print(f"\n1-D GAN fit: N(4, 0.5^2), {args.fit_steps} generator steps, settings {SETTINGS}, "
              f"{'constant learning rates' if args.no_decay else 'LinearLRDecay(0.05)'}")
        rows = [fit(args.fit_steps, s, decay=not args.no_decay) for s in args.seeds]
        for r in rows:
            print(f"  seed {r['seed']}: mean {r['mean']:.3f}, std {r['std']:.3f} | |mean gap| {r['mean_gap']:.3f}, "
                  f"|std gap| {r['std_gap']:.3f}, W1 {r['w1']:.3f} (floor {r['w1_floor']:.3f}) | {r['seconds']:.1f} s")
        for key in ("mean_gap", "std_gap", "w1"):
            print(f"  median {key}: {statistics.median(r[key] for r in rows):.3f}")
    print(f"\ntraining-loop overhead: {args.steps} generator steps, batch {SETTINGS['batch_size']}, "
          f"{args.repeats} alternating repeats")
    res = overhead(args.steps, args.repeats)
    for clock, r in res.items():
        print(f"  {clock:>4} time: bare loop {r['bare_ms_per_step']:.2f} ms/step, train_gan {r['loop_ms_per_step']:.2f} "
              f"ms/step, median ratio {r['median_ratio']:.3f} (overhead {100 * (r['median_ratio'] - 1):+.1f} %)")
    ratio = res[args.clock]["median_ratio"]
    verdict = "OK" if ratio <= 1.10 else "ABOVE TARGET"
    print(f"  target: median {args.clock}-time ratio <= 1.10 -> {ratio:.3f}: {verdict}")
    ok &= ratio <= 1.10
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
