"""Named recipes: how to build a generator and a discriminator, and how to train them.

The one place the notebooks, the command line and the benchmarks get a model from, so that
``python -m gan_tutorial train --model NAME`` trains what the notebook teaches::

    from gan_tutorial import recipes
    net_G, net_D, recipe = recipes.build("mlp")
    trainer = train_gan(net_G, net_D, mnist, recipe.config(num_steps=2000))

``python -m gan_tutorial train --list`` prints the MNIST recipes with their measured 180-s result
(``benchmarks/recipes.py`` measures them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .conditional import build_cgan
from .losses import WassersteinLoss
from .models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from .train import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """A named pair of nets plus their training settings (``TrainConfig`` fields)."""

    name: str
    description: str
    build_nets: Callable           # (channels, image_size, **kw) -> (net_G, net_D)
    settings: dict                 # TrainConfig overrides: loss, k, lr_G, lr_D, betas, batch_size, ema_decay, ...
    data: str = "mnist"            # "mnist" (images, labels when conditional) or "toy2d" (2-D mixtures)
    notebook: str = ""             # where it is taught
    result: str = ""               # measured by benchmarks/recipes.py --equal-steps (see table())
    conditional: bool = field(default=False)
    convolutional: bool = False    # builds for any channels at 28, 32 or 64 px: trains on colour images too

    def build(self, channels: int = 1, image_size: int = 28, **kwargs):
        """Fresh ``(net_G, net_D)``; keyword arguments go to the builder (e.g. ``width=64``)."""
        return self.build_nets(channels=channels, image_size=image_size, **kwargs)

    def config(self, **overrides) -> TrainConfig:
        """A ``TrainConfig`` with this recipe's settings, overridden by ``overrides``."""
        return TrainConfig(**{**self.settings, **overrides})

    def train_kwargs(self, **overrides) -> dict:
        """The settings as ``train_gan`` keyword arguments (a copy), overridden by ``overrides``."""
        return {**self.settings, **overrides}


# --------------------------------------------------------------------------- builders
def _mlp(channels=1, image_size=28, latent_dim=64, width=None, **_):
    shape = (channels, image_size, image_size)
    hidden = (256, 512, 1024) if width is None else (width, 2 * width, 4 * width)
    return MLPGenerator(latent_dim, shape, hidden=hidden), MLPDiscriminator(shape)


def _dcgan(norm):
    def build(channels=1, image_size=28, latent_dim=100, width=32, **_):
        return (DCGANGenerator(latent_dim, channels, image_size, width),
                DCGANDiscriminator(channels, image_size, width, norm=norm))
    return build


def _cgan(kind):
    def build(channels=1, image_size=28, latent_dim=64, num_classes=10, **_):
        return build_cgan(kind, latent_dim, (channels, image_size, image_size), num_classes,
                          g_hidden=(256, 512), d_hidden=(512, 256))
    return build


def _toy(channels=None, image_size=None, latent_dim=2, hidden=(64, 64, 64), critic_hidden=None, **_):
    """2-D toys: ReLU MLP generator without batch norm (the penalty is per sample) and a LeakyReLU critic."""
    net_G = MLPGenerator(latent_dim, 2, hidden=hidden, activation="relu", batchnorm=False, out_activation=None)
    net_D = MLPDiscriminator(2, hidden=hidden if critic_hidden is None else critic_hidden, activation="leaky_relu")
    return net_G, net_D


# --------------------------------------------------------------------------- the registry
# Why each setting: Adam beta1 = 0.5 (DCGAN) damps the oscillating adversarial gradients; the
# WGAN-GP recipes use beta2 = 0.9 and k = 5 critic steps as in Gulrajani et al. (2017). MNIST
# learning rates and EMA decays were chosen by benchmarks/recipes.py (180 s on 2 CPU cores, every
# try printed). The toys use batches of 512 and learning rates that fall linearly to 0 (toy2d adds
# the decay); 3e-3 suits nets this small (benchmarks/mode_collapse.py --sweep), and lambda = 1 beats
# the paper's image setting of 10 on the ring.
_RECIPES = [
    Recipe("mlp", "fully connected G (BatchNorm, GELU) and D (LeakyReLU), non-saturating loss, EMA of G",
           _mlp, dict(loss="non-saturating", lr_G=4e-4, lr_D=4e-4, betas=(0.5, 0.999), k=1, batch_size=64,
                      ema_decay=0.999), notebook="02",
           result="classifier-FID 12.7 (raw weights 23.3), rarest digit 7.9 %, 7,174 steps"),
    Recipe("dcgan", "convolutional G and D (width 32, BatchNorm), non-saturating loss",
           _dcgan("batch"), dict(loss="non-saturating", lr_G=2e-4, lr_D=2e-4, betas=(0.5, 0.999), k=1,
                                 batch_size=64), notebook="03",
           result="classifier-FID 77.7, rarest digit 3.8 %, 3,628 steps", convolutional=True),
    Recipe("cgan", "conditional MLP G and projection D: draws the digit you ask for",
           _cgan("projection"), dict(loss="non-saturating", lr_G=4e-4, lr_D=4e-4, betas=(0.5, 0.999), k=1,
                                     batch_size=64), notebook="04", conditional=True),
    Recipe("cgan-concat", "conditional MLP G and D with the one-hot label concatenated to the pixels",
           _cgan("concat"), dict(loss="non-saturating", lr_G=4e-4, lr_D=4e-4, betas=(0.5, 0.999), k=1,
                                 batch_size=64), notebook="04", conditional=True),
    Recipe("wgan-gp", "the MLP nets as a Wasserstein critic with gradient penalty (k = 5)",
           _mlp, dict(loss="wasserstein-gp", lr_G=5e-4, lr_D=5e-4, betas=(0.5, 0.9), k=5, batch_size=64),
           notebook="05", result="classifier-FID 39.6, rarest digit 7.9 %, 2,209 steps"),
    Recipe("wgan-gp-conv", "DCGAN generator and a LayerNorm convolutional critic, gradient penalty (k = 5)",
           _dcgan("layer"), dict(loss="wasserstein-gp", lr_G=1e-4, lr_D=1e-4, betas=(0.0, 0.9), k=5,
                                 batch_size=64), convolutional=True),
    Recipe("toy-gan", "2-D toy: the 2014 game with the non-saturating loss", _toy,
           dict(loss="non-saturating", lr_G=3e-3, lr_D=3e-3, betas=(0.5, 0.999), k=1, batch_size=512),
           data="toy2d", notebook="05"),
    Recipe("toy-wgan", "2-D toy: WGAN with weight clipping at 0.01 (Adam beta1 = 0 for RMSProp)", _toy,
           dict(loss="wasserstein", lr_G=1e-3, lr_D=1e-3, betas=(0.0, 0.9), k=5, batch_size=512),
           data="toy2d", notebook="05"),
    Recipe("toy-wgan-gp", "2-D toy: WGAN-GP with lambda = 1", _toy,
           dict(loss=WassersteinLoss(gp_weight=1.0), lr_G=3e-3, lr_D=3e-3, betas=(0.5, 0.9), k=5, batch_size=512),
           data="toy2d", notebook="05"),
]
RECIPES: dict[str, Recipe] = {r.name: r for r in _RECIPES}


def names(data: str | None = None) -> list[str]:
    """Recipe names, optionally only those for ``data`` (``"mnist"`` or ``"toy2d"``)."""
    return [n for n, r in RECIPES.items() if data is None or r.data == data]


def get(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name lists the known ones."""
    key = str(name).strip().lower()
    if key not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}. Known recipes: {', '.join(RECIPES)}.")
    return RECIPES[key]


def build(name: str, channels: int = 1, image_size: int = 28, **kwargs):
    """``(net_G, net_D, recipe)`` for the recipe called ``name``."""
    recipe = get(name)
    net_G, net_D = recipe.build(channels=channels, image_size=image_size, **kwargs)
    return net_G, net_D, recipe


def table(data: str = "mnist") -> str:
    """The recipes for ``data`` as a text table: name, notebook, description, measured result."""
    rows = [f"{r.name:14s} {('nb ' + r.notebook) if r.notebook else '':6s} {r.description}"
            + (f"\n{'':21s}measured: {r.result}" if r.result else "")
            for r in RECIPES.values() if r.data == data]
    note = ("measured: the generator steps an idle 2-core CPU makes in 180 s, 5,000 samples scored against "
            "2,000 held-out digits (benchmarks/recipes.py --equal-steps)")
    return "\n".join(rows) + "\n" + note


__all__ = ["Recipe", "RECIPES", "names", "get", "build", "table"]
