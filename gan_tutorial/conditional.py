"""Conditional GANs: a projection discriminator, per-class sampling, and a data-augmentation test.

The package's conditional models (``models.MLPGenerator(..., num_classes=10)`` and friends) read
the label as a one-hot vector *concatenated* to their input. This module gathers what notebook 04 uses:

* :class:`~gan_tutorial.models.ProjectionMLPDiscriminator` (defined in ``models``) -- the label enters through an inner product with the
  discriminator's features (Miyato & Koyama, 2018):
  ``score(x, y) = w . phi(x) + b + e_y . phi(x)``,
  with ``phi`` an MLP feature extractor and ``e_y`` a learned vector per class.
* :func:`build_cgan` -- a matched generator/discriminator pair with either way of feeding the label.
* :func:`generate`, :func:`class_grid_samples` -- sampling with chosen labels.
* :class:`LabelAccuracyTracker` -- a training callback that follows how often a classifier reads
  the generated digit as the one asked for.
* :func:`balanced_subset`, :func:`augmentation_experiment` -- does adding cGAN samples to a small
  labelled training set help a classifier? Measured on held-out real digits.
"""
from __future__ import annotations

import torch

from .data import ImageData
from .models import MLPDiscriminator, MLPGenerator, ProjectionMLPDiscriminator, generate as _generate
from .train import Callback


def build_cgan(discriminator: str = "projection", latent_dim: int = 64, image_shape=(1, 28, 28),
               num_classes: int = 10, g_hidden=(256, 512), d_hidden=(512, 256)):
    """A conditional MLP generator and a discriminator that sees the label; returns ``(net_G, net_D)``.

    ``discriminator``: ``"projection"`` (:class:`ProjectionMLPDiscriminator`) or ``"concat"``
    (``models.MLPDiscriminator`` with the one-hot label appended to the pixels). The generator
    always reads ``z ⊕ one_hot(y)``. Train with ``train_gan(net_G, net_D, (images, labels), **recipes.get("cgan").train_kwargs())``.
    """
    net_G = MLPGenerator(latent_dim, image_shape, hidden=g_hidden, num_classes=num_classes)
    if discriminator == "projection":
        net_D = ProjectionMLPDiscriminator(image_shape, hidden=d_hidden, num_classes=num_classes)
    elif discriminator == "concat":
        net_D = MLPDiscriminator(image_shape, hidden=d_hidden, num_classes=num_classes)
    else:
        raise ValueError(f"discriminator must be 'projection' or 'concat', got {discriminator!r}")
    return net_G, net_D


# --------------------------------------------------------------------------- sampling
def _latent_dim(net_G) -> int:
    dim = getattr(net_G, "latent_dim", None)
    if dim is None:
        raise ValueError("net_G needs a .latent_dim attribute (all gan_tutorial generators have one)")
    return dim


def _check_conditional(net_G) -> int:
    k = getattr(net_G, "num_classes", 0)
    if not k:
        raise ValueError(f"{type(net_G).__name__} is unconditional (num_classes=0): a label cannot pick what "
                         "it draws. Build it with num_classes=10.")
    return k


def generate(net_G, labels, noise=None, seed: int | None = None, batch_size: int = 500) -> torch.Tensor:
    """Images for the given labels from a conditional generator (``models.generate`` with the labels
    first): ``labels`` ``(N,)`` integers; ``noise`` ``(N, latent_dim)`` or ``None`` for fresh noise
    (seeded with ``seed`` when given). Eval mode; a CPU tensor."""
    k = _check_conditional(net_G)
    labels = torch.as_tensor(labels).long().reshape(-1).cpu()
    if labels.numel() and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must be in [0, {k - 1}], got {int(labels.min())}..{int(labels.max())}")
    if noise is not None and tuple(torch.as_tensor(noise).shape) != (labels.shape[0], _latent_dim(net_G)):
        raise ValueError(f"noise must have shape ({labels.shape[0]}, {_latent_dim(net_G)}) for {labels.shape[0]} "
                         f"labels, got {tuple(torch.as_tensor(noise).shape)}")
    return _generate(net_G, labels.shape[0], noise=noise, labels=labels, seed=seed, batch_size=batch_size)


def class_grid_samples(net_G, per_class: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` samples of every class, class-major: ``(K * per_class, ...)`` images and labels.

    Column ``j`` uses the same noise vector ``z_j`` in every row, so reading down a column shows
    one "handwriting style" writing each digit.
    """
    k = _check_conditional(net_G)
    z = torch.randn(per_class, _latent_dim(net_G), generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(k).repeat_interleave(per_class)          # 0,0,..,0,1,1,..
    return generate(net_G, labels, noise=z.repeat(k, 1)), labels


class LabelAccuracyTracker(Callback):
    """Training callback: every ``every`` generator steps (a multiple of ``log_every``, since it
    runs when the loop logs), the share of ``num`` generated digits
    (fixed noise, balanced labels) that ``classifier`` reads as the digit asked for.

    ``classifier`` is anything with ``.accuracy(images, labels)``, e.g.
    ``gan_tutorial.classifier.get_classifier()``. Results are in ``.steps``, ``.seconds`` (training
    time so far, ``trainer.elapsed``) and ``.accuracy``.
    """

    def __init__(self, classifier, every: int = 250, num: int = 500, seed: int = 0):
        self.classifier, self.every, self.num, self.seed = classifier, every, num, seed
        self.steps: list[int] = []
        self.accuracy: list[float] = []
        self.seconds: list[float] = []
        self._z = self._labels = None

    def measure(self, trainer) -> float:
        if self._z is None:
            k = trainer.num_classes
            if not k:
                raise ValueError("LabelAccuracyTracker needs a conditional generator (num_classes > 0)")
            self._labels = torch.arange(self.num) % k
            self._z = torch.randn(self.num, trainer.latent_dim, generator=torch.Generator().manual_seed(self.seed))
        images = trainer.sample(noise=self._z, labels=self._labels.to(trainer.device))
        return float(self.classifier.accuracy(images, self._labels))

    def _record(self, trainer):
        if not self.steps or self.steps[-1] != trainer.step:
            self.steps.append(trainer.step)
            self.seconds.append(float(trainer.elapsed))
            self.accuracy.append(self.measure(trainer))

    def on_train_begin(self, trainer):
        if trainer.step == 0:
            self._record(trainer)

    def on_log(self, trainer, record):
        if trainer.step % self.every == 0:
            self._record(trainer)

    def on_train_end(self, trainer):
        self._record(trainer)


# --------------------------------------------------------------------------- data augmentation
def balanced_subset(data: ImageData, per_class: int, seed: int = 0, num_classes: int = 10) -> ImageData:
    """``per_class`` randomly chosen images of each class (seeded), shuffled together."""
    gen = torch.Generator().manual_seed(seed)
    labels = data.labels.cpu()
    picks = []
    for c in range(num_classes):
        idx = (labels == c).nonzero().flatten()
        if idx.numel() < per_class:
            raise ValueError(f"class {c} has only {idx.numel()} images, fewer than per_class={per_class}")
        picks.append(idx[torch.randperm(idx.numel(), generator=gen)[:per_class]])
    index = torch.cat(picks)
    index = index[torch.randperm(index.numel(), generator=gen)]
    sub = data.subset(index.to(data.labels.device))
    return ImageData(sub.images, sub.labels, f"{per_class} per class from {data.source}")


def synthetic_set(net_G, num: int, seed: int = 0, num_classes: int | None = None) -> ImageData:
    """``num`` generated images with balanced labels (``num`` rounded down to whole classes)."""
    k = num_classes or _check_conditional(net_G)
    per = num // k
    if per < 1:
        raise ValueError(f"num={num} is fewer than one image per class")
    labels = torch.arange(k).repeat(per)
    return ImageData(generate(net_G, labels, seed=seed), labels, f"{labels.numel()} cGAN samples")


def concat_data(*sets: ImageData) -> ImageData:
    """Join image sets (on the CPU)."""
    return ImageData(torch.cat([s.images.cpu() for s in sets]), torch.cat([s.labels.cpu() for s in sets]),
                     " + ".join(s.source for s in sets))


def mix(real: ImageData, fake: ImageData, real_share: float = 0.5) -> ImageData:
    """``real`` repeated a whole number of times so that it makes up about ``real_share`` of the
    result, followed by ``fake``. ``real_share=0`` just concatenates the two."""
    if not 0.0 <= real_share < 1.0:
        raise ValueError(f"real_share must be in [0, 1), got {real_share}")
    repeats = max(1, round(real_share / (1 - real_share) * len(fake) / len(real))) if real_share else 1
    return concat_data(*[real] * repeats, fake)


def augmentation_experiment(real: ImageData, holdout: ImageData, net_G, num_fake: int = 2000,
                            seeds=(0, 1, 2), num_steps: int = 300, real_share: float = 0.5,
                            synthetic_only: bool = True, device=None, verbose: bool = False) -> dict:
    """Train the same small classifier on ``real``, on ``real`` + cGAN samples and (optionally) on
    cGAN samples alone; measure each on ``holdout``. Returns ``{setting: [accuracy per seed]}``.

    Every run uses :func:`gan_tutorial.classifier.train_classifier` (the metric classifier's
    architecture trained from scratch, with its light random-affine jitter) for ``num_steps``
    minibatches; seed ``s`` sets both the classifier's initialisation/batches and the cGAN samples,
    so the comparison is paired. In the mixed set the real images are repeated so that they make
    up about ``real_share`` of it (otherwise a few hundred real digits would be drowned by
    thousands of samples); ``real_share=0`` just concatenates.
    """
    if not 0.0 <= real_share < 1.0:
        raise ValueError(f"real_share must be in [0, 1), got {real_share}")  # before any training
    from .classifier import train_classifier

    results = {"real": [], "real + cGAN": []}
    if synthetic_only:
        results["cGAN only"] = []
    for s in seeds:
        fake = synthetic_set(net_G, num_fake, seed=1000 + s)
        runs = {"real": real, "real + cGAN": mix(real, fake, real_share)}
        if synthetic_only:
            runs["cGAN only"] = fake
        for name, train_set in runs.items():
            model = train_classifier(train_set, holdout, device=device, num_steps=num_steps, seed=s, verbose=False)
            results[name].append(model.holdout_accuracy)
            if verbose:
                print(f"seed {s}: {name:12s} {100 * model.holdout_accuracy:.1f}%")
    return results


def summarize(results: dict) -> dict:
    """``{setting: (mean, std)}`` of the accuracies from :func:`augmentation_experiment` (std 0 for one seed)."""
    out = {}
    for name, accs in results.items():
        t = torch.tensor(accs, dtype=torch.float64)
        out[name] = (float(t.mean()), float(t.std()) if t.numel() > 1 else 0.0)
    return out


__all__ = ["ProjectionMLPDiscriminator", "LabelAccuracyTracker", "build_cgan", "generate",
           "class_grid_samples", "balanced_subset", "synthetic_set", "concat_data", "mix", "augmentation_experiment",
           "summarize"]
