"""Conditional GAN on MNIST for a wall-clock budget: label accuracy, classifier-FID, augmentation.

Trains the cGAN of notebook 04 (MLP generator on ``z ⊕ one_hot(y)``, projection discriminator by
default; ``--disc concat`` for the one-hot-concatenation discriminator) on the ``rest`` split of
``gan_tutorial.classifier.mnist_splits`` for ``--budget`` seconds (default 180), then reports:

* label accuracy: the share of generated digits the package's classifier reads as the digit asked
  for (balanced labels, ``--num-eval`` images), also along the way (every ``--track-every`` steps);
* classifier-FID of the samples against the held-out real digits (and the real-vs-real floor);
* the data-augmentation experiment: a classifier (the metric classifier's architecture, from
  scratch) trained on ``--aug-per-class`` real images per digit, vs the same plus ``--aug-fake``
  cGAN samples, vs cGAN samples alone, measured on the held-out real digits, for several seeds.
  Two cGANs are used: the one trained on all of ``rest`` (it has seen many more labelled images
  than the small set, so a gain there is partly knowledge transfer), and one trained only on the
  small set (``--small-cgan-steps``; the fair "few labels" question; 0 skips it).
* a memorisation check of the small-set cGAN (``metrics.nearest_neighbours``): the distance of its
  samples to their nearest training image, against held-out real digits to theirs (pixels and
  classifier features).

    GAN_TUTORIAL_DATA=DIR python benchmarks/cgan.py --budget 180 --threads 2

Time is wall-clock: run it on a quiet machine (CPU seconds are printed too). Training stops at the
first step after the budget (``train_gan(time_budget=...)``); classifier training, scoring and the
augmentation experiment are not counted in it.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

# The networks and settings notebook 04 uses: the registry's "cgan" (projection) and "cgan-concat" recipes.
RECIPES = {"projection": "cgan", "concat": "cgan-concat"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=180.0, help="seconds of cGAN training (default 180)")
    p.add_argument("--disc", nargs="+", default=["projection"], choices=["projection", "concat"],
                   help="discriminator(s) to train, one run each (default: projection)")
    p.add_argument("--max-steps", type=int, default=10**9, help="stop earlier after this many steps")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-eval", type=int, default=5000, help="generated images per measurement")
    p.add_argument("--track-every", type=int, default=1000, help="steps between label-accuracy checks")
    p.add_argument("--aug-per-class", type=int, default=20, help="real labelled images per digit (default 20)")
    p.add_argument("--aug-fake", type=int, default=5000, help="cGAN samples added (default 5000)")
    p.add_argument("--aug-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--aug-steps", type=int, default=600, help="classifier minibatches per run (default 600)")
    p.add_argument("--small-cgan-steps", type=int, default=3000,
                   help="steps of the cGAN trained on the small set only (0: skip)")
    p.add_argument("--skip-aug", action="store_true", help="skip the augmentation experiment")
    p.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "gan_tutorial_cgan"),
                   help="folder for the per-class grid (PNG) and results.json")
    return p.parse_args(argv)


def train_cgan(disc, train_set, args, classifier=None, budget=None, max_steps=None, track_every=0):
    from gan_tutorial import conditional, recipes, train_gan

    torch.manual_seed(args.seed)
    net_G, net_D, recipe = recipes.build(RECIPES[disc])
    callbacks = []
    if track_every and classifier is not None:
        callbacks.append(conditional.LabelAccuracyTracker(classifier, every=track_every, num=1000, seed=args.seed))
    cpu0, start = time.process_time(), time.perf_counter()
    trainer = train_gan(net_G, net_D, (train_set.images, train_set.labels), **recipe.train_kwargs(),
                        num_steps=max_steps or args.max_steps,
                        time_budget=budget, seed=args.seed, device=args.device, progress=False, log_every=100,
                        callbacks=callbacks)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return trainer, seconds, cpu, (callbacks[0] if callbacks else None)


def memorisation(net_G, train_set, holdout, classifier, args):
    """Distances to the nearest training image: ``--num-eval`` samples vs the held-out real digits."""
    from gan_tutorial import conditional, metrics

    labels = torch.arange(args.num_eval) % 10
    fake = conditional.generate(net_G, labels, seed=args.seed)
    out = {}
    print(f"\nMemorisation check: distance to the nearest of the {len(train_set)} images the small cGAN trained on")
    for space in ("pixels", "features"):
        d_fake, i_fake = metrics.nearest_neighbours(fake, train_set.images, classifier, space=space)
        d_real, i_real = metrics.nearest_neighbours(holdout.images, train_set.images, classifier, space=space)
        low = float(d_real.quantile(0.01))
        out[space] = {"median_fake": round(float(d_fake.median()), 3), "median_real": round(float(d_real.median()), 3),
                      "min_fake": round(float(d_fake.min()), 3), "min_real": round(float(d_real.min()), 3),
                      "share_fake_below_min_real": round(float((d_fake < d_real.min()).float().mean()), 4),
                      "share_fake_below_real_q01": round(float((d_fake < low).float().mean()), 4),
                      "distinct_nearest_fake": int(i_fake.unique().numel()),
                      "distinct_nearest_real": int(i_real.unique().numel())}
        print(f"  {space}: " + ", ".join(f"{k} {v}" for k, v in out[space].items()))
    return out


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from gan_tutorial import conditional, config, metrics, plotting, recipes
    from gan_tutorial.classifier import get_classifier, mnist_splits

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = config.get_device(args.device)
    rest, holdout = mnist_splits(verbose=False)
    print(f"data: {rest.source.split(', from')[0]}; cGAN trains on {len(rest)} images, {len(holdout)} held out | "
          f"device {device} | torch threads {torch.get_num_threads()} | os.cpu_count() {os.cpu_count()}")
    classifier = get_classifier(device=device, verbose=False)
    print(f"classifier: {100 * classifier.holdout_accuracy:.1f}% on the held-out digits (the label-accuracy ceiling)")
    floor = metrics.classifier_fid(rest.images[: len(holdout)], holdout.images, classifier)
    print(f"reference classifier-FID, {len(holdout)} real training digits vs the held-out ones: {floor:.2f}")

    report = {"budget_s": args.budget, "threads": torch.get_num_threads(),
              "settings": {disc: {k: str(v) for k, v in recipes.get(name).settings.items()}
                           for disc, name in RECIPES.items()},
              "classifier_holdout_accuracy": classifier.holdout_accuracy, "fid_real_vs_real": floor, "runs": []}
    trainers = {}
    for disc in args.disc:
        trainer, seconds, cpu, tracker = train_cgan(disc, rest, args, classifier, budget=args.budget,
                                                    track_every=args.track_every)
        trainers[disc] = trainer
        labels = torch.arange(args.num_eval) % 10
        fake = conditional.generate(trainer.sampling_G, labels, seed=args.seed)
        ev = metrics.evaluate_images(fake, holdout.images, classifier, labels=labels)
        per_class = [float((classifier.predict(fake[labels == c]) == c).float().mean()) for c in range(10)]
        grid, _ = conditional.class_grid_samples(trainer.sampling_G, per_class=10, seed=args.seed)
        plotting.save_grid(grid, out / f"cgan_{disc}_per_class.png", nrow=10)
        row = {"disc": disc, "steps": trainer.step, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
               "steps_per_s": round(trainer.step / seconds, 2), "label_accuracy": round(ev["label_accuracy"], 4),
               "per_class_accuracy": [round(a, 3) for a in per_class], "fid": round(ev["fid"], 2),
               "track": [{"step": s, "seconds": round(t, 1), "label_accuracy": round(a, 4)}
                         for s, t, a in zip(tracker.steps, tracker.seconds, tracker.accuracy)] if tracker else []}
        report["runs"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "track"}), flush=True)
        for t in row["track"]:
            print(f"  step {t['step']:>6d}  {t['seconds']:>6.1f} s  label accuracy {t['label_accuracy']:.1%}")

    if not args.skip_aug:
        G_rest = trainers.get("projection", next(iter(trainers.values()))).sampling_G
        small = conditional.balanced_subset(rest, args.aug_per_class, seed=args.seed)
        kw = dict(num_fake=args.aug_fake, seeds=tuple(args.aug_seeds), num_steps=args.aug_steps, device=device)
        start = time.perf_counter()
        aug = {"cGAN trained on all of rest": conditional.augmentation_experiment(small, holdout, G_rest, **kw)}
        if args.small_cgan_steps:
            disc = "projection" if "projection" in trainers else args.disc[0]
            small_trainer, *_ = train_cgan(disc, small, args, max_steps=args.small_cgan_steps)
            aug[f"cGAN trained on the {len(small)} small-set images only"] = conditional.augmentation_experiment(
                small, holdout, small_trainer.sampling_G, **kw)
            report["memorisation"] = memorisation(small_trainer.sampling_G, small, holdout, classifier, args)
        report["augmentation"] = {"per_class": args.aug_per_class, "num_real": len(small), "num_fake": args.aug_fake,
                                  "seeds": args.aug_seeds, "classifier_steps": args.aug_steps, "results": aug,
                                  "seconds": round(time.perf_counter() - start, 1)}
        print(f"\nData augmentation: {len(small)} real labelled digits ({args.aug_per_class} per class), "
              f"+ {args.aug_fake} cGAN samples; accuracy on {len(holdout)} held-out real digits, "
              f"seeds {args.aug_seeds}, {args.aug_steps} classifier steps each")
        for source, res in aug.items():
            print(f"  {source}:")
            for name, (mean, std) in conditional.summarize(res).items():
                print(f"    {name:12s} {100 * mean:5.1f}% ± {100 * std:.1f}   (per seed: "
                      f"{', '.join(f'{100 * a:.1f}' for a in res[name])})")
            gain = [b - a for a, b in zip(res["real"], res["real + cGAN"])]
            print(f"    real + cGAN minus real, per seed: {', '.join(f'{100 * g:+.1f}' for g in gain)} points")

    (out / "results.json").write_text(json.dumps(report, indent=2))
    print(f"per-class grids and results.json written to {out}")
    return report


if __name__ == "__main__":
    main()
