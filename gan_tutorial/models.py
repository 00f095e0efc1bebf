"""Generators and discriminators/critics: MLP (any shape, toys and MNIST) and DCGAN (28/32/64 px).

Every model takes ``num_classes``: 0 for an unconditional model; >0 makes it conditional
(the generator reads ``z ⊕ one_hot(y)``, the discriminator sees the label as extra inputs) and
``forward`` then needs the labels. Discriminators return raw scores of shape ``(B,)``: no Sigmoid.
Each model keeps its constructor arguments in ``.hparams`` so a checkpoint can rebuild it.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

_ACTIVATIONS = {"relu": lambda: nn.ReLU(), "gelu": lambda: nn.GELU(),
                "leaky_relu": lambda: nn.LeakyReLU(0.2)}


@contextmanager
def eval_mode(*nets: nn.Module):
    """Run a block with ``nets`` in eval mode (batch norm uses its running statistics); each net's
    own mode is restored afterwards, also when the block raises."""
    modes = [net.training for net in nets]
    for net in nets:
        net.eval()
    try:
        yield
    finally:
        for net, mode in zip(nets, modes):
            net.train(mode)


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {', '.join(_ACTIVATIONS)}.")
    return _ACTIVATIONS[name]()


def _shape(shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)


class _Conditional(nn.Module):
    """Shared label handling: checks labels and turns them into one-hot vectors."""

    num_classes = 0

    def _one_hot(self, labels, batch: int, device) -> torch.Tensor | None:
        if self.num_classes == 0:
            if labels is not None:
                raise ValueError(f"{type(self).__name__} is unconditional (num_classes=0) but got labels; "
                                 "build it with num_classes=10 to condition on digits.")
            return None
        if labels is None:
            raise ValueError(f"{type(self).__name__} is conditional (num_classes={self.num_classes}): "
                             "call it with labels, e.g. net(x, labels).")
        labels = torch.as_tensor(labels, device=device).long().reshape(-1)
        if labels.shape[0] != batch:
            raise ValueError(f"got {labels.shape[0]} labels for a batch of {batch}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must be in [0, {self.num_classes - 1}], got {labels.min()}..{labels.max()}")
        return F.one_hot(labels, self.num_classes).float()


class MLPGenerator(_Conditional):
    """``z (B, latent_dim) -> x (B, *out_shape)`` through fully connected layers.

    ``out_activation='tanh'`` for images in [-1, 1]; ``None`` for unbounded toy data.
    ``batchnorm`` after each hidden Linear (not on the output) steadies training on images.
    """

    def __init__(self, latent_dim=64, out_shape=(1, 28, 28), hidden=(256, 512, 1024), num_classes=0,
                 activation="gelu", batchnorm=True, out_activation="tanh"):
        super().__init__()
        self.hparams = dict(latent_dim=latent_dim, out_shape=list(_shape(out_shape)), hidden=list(hidden),
                            num_classes=num_classes, activation=activation, batchnorm=batchnorm,
                            out_activation=out_activation)
        self.latent_dim, self.num_classes, self.out_shape = latent_dim, num_classes, _shape(out_shape)
        layers, width = [], latent_dim + num_classes
        for h in hidden:
            layers += [nn.Linear(width, h)] + ([nn.BatchNorm1d(h)] if batchnorm else []) + [_activation(activation)]
            width = h
        layers.append(nn.Linear(width, math.prod(self.out_shape)))
        if out_activation == "tanh":
            layers.append(nn.Tanh())
        elif out_activation is not None:
            raise ValueError(f"out_activation must be 'tanh' or None, got {out_activation!r}")
        self.net = nn.Sequential(*layers)

    def forward(self, z, labels=None):
        y = self._one_hot(labels, z.shape[0], z.device)
        h = z if y is None else torch.cat([z, y.to(z.dtype)], dim=1)
        return self.net(h).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(_Conditional):
    """``x (B, *in_shape) -> score (B,)``; LeakyReLU(0.2) hidden layers, no normalisation."""

    def __init__(self, in_shape=(1, 28, 28), hidden=(512, 256), num_classes=0, activation="leaky_relu",
                 dropout=0.0):
        super().__init__()
        self.hparams = dict(in_shape=list(_shape(in_shape)), hidden=list(hidden), num_classes=num_classes,
                            activation=activation, dropout=dropout)
        self.num_classes, self.in_shape = num_classes, _shape(in_shape)
        layers, width = [], math.prod(self.in_shape) + num_classes
        for h in hidden:
            layers += [nn.Linear(width, h), _activation(activation)] + ([nn.Dropout(dropout)] if dropout else [])
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x, labels=None):
        h = x.reshape(x.shape[0], -1)
        y = self._one_hot(labels, x.shape[0], x.device)
        if y is not None:
            h = torch.cat([h, y.to(h.dtype)], dim=1)
        return self.net(h).view(-1)


def _plan(image_size: int) -> tuple[int, int]:
    """(start size, number of x2 up/down-samplings) for a supported image size."""
    plans = {28: (7, 2), 32: (4, 3), 64: (4, 4)}
    if image_size not in plans:
        raise ValueError(f"DCGAN models take image_size 28, 32 or 64, got {image_size}. "
                         "Resize the data (load_mnist(image_size=32)) or pick one of those.")
    return plans[image_size]


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(_Conditional):
    """Transposed-convolution generator, ``z (B, latent_dim) -> (B, channels, size, size)`` in [-1, 1].

    For 64 px: z -> (8w, 4, 4) -> (4w, 8, 8) -> (2w, 16, 16) -> (w, 32, 32) -> (C, 64, 64);
    for 32 px the same from (4w, 4, 4); for 28 px: z -> (2w, 7, 7) -> (w, 14, 14) -> (C, 28, 28).
    BatchNorm + ReLU inside, Tanh at the end, weights ~ N(0, 0.02).
    """

    def __init__(self, latent_dim=100, channels=1, image_size=28, width=64, num_classes=0):
        super().__init__()
        self.hparams = dict(latent_dim=latent_dim, channels=channels, image_size=image_size, width=width,
                            num_classes=num_classes)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        start, ups = _plan(image_size)
        ch = width * 2 ** (ups - 1)
        layers = [nn.ConvTranspose2d(latent_dim + num_classes, ch, start, 1, 0, bias=False),
                  nn.BatchNorm2d(ch), nn.ReLU(True)]                      # (B, ch, start, start)
        for _ in range(ups - 1):                                         # each block doubles H and W
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]   # (B, channels, size, size)
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z, labels=None):
        y = self._one_hot(labels, z.shape[0], z.device)
        h = z if y is None else torch.cat([z, y.to(z.dtype)], dim=1)
        return self.net(h[:, :, None, None])


class DCGANDiscriminator(_Conditional):
    """Strided-convolution discriminator (or WGAN critic), ``(B, C, size, size) -> (B,)`` scores.

    ``norm``: ``'batch'`` (DCGAN), ``'layer'`` (GroupNorm with one group: per-sample, as WGAN-GP
    needs, because batch norm mixes samples and breaks the per-sample gradient penalty) or
    ``'none'``. LeakyReLU(0.2); no norm on the first layer; no Sigmoid.
    Conditional: one-hot label planes are stacked onto the image channels.
    """

    def __init__(self, channels=1, image_size=28, width=64, num_classes=0, norm="batch"):
        super().__init__()
        self.hparams = dict(channels=channels, image_size=image_size, width=width, num_classes=num_classes,
                            norm=norm)
        if norm not in ("batch", "layer", "none"):
            raise ValueError(f"norm must be 'batch', 'layer' or 'none', got {norm!r}")
        self.num_classes, self.image_size = num_classes, image_size
        start, downs = _plan(image_size)
        layers, ch = [nn.Conv2d(channels + num_classes, width, 4, 2, 1), nn.LeakyReLU(0.2, True)], width
        for _ in range(downs - 1):                                       # each block halves H and W
            layers.append(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(ch * 2))
            elif norm == "layer":
                layers.append(nn.GroupNorm(1, ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, start, 1, 0))                     # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x, labels=None):
        if x.dim() != 4 or x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"expected images of shape (B, C, {self.image_size}, {self.image_size}), "
                             f"got {tuple(x.shape)}")
        y = self._one_hot(labels, x.shape[0], x.device)
        if y is not None:
            planes = y.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = torch.cat([x, planes], dim=1)
        return self.net(x).view(-1)


MODEL_CLASSES = {cls.__name__: cls for cls in (MLPGenerator, MLPDiscriminator, DCGANGenerator, DCGANDiscriminator)}


def rebuild(class_name: str, hparams: dict) -> nn.Module:
    """Rebuild a model from its class name and ``hparams`` (as stored in a checkpoint)."""
    if class_name not in MODEL_CLASSES:
        raise ValueError(f"Unknown model class {class_name!r} in checkpoint; known: {', '.join(MODEL_CLASSES)}.")
    return MODEL_CLASSES[class_name](**hparams)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Named recipes used by the command line and notebooks: models + loss + optimiser settings.
RECIPES = {
    "mlp": dict(loss="non-saturating", lr_G=2e-4, lr_D=2e-4, betas=(0.5, 0.999), k=1),
    "dcgan": dict(loss="non-saturating", lr_G=2e-4, lr_D=2e-4, betas=(0.5, 0.999), k=1),
    "cgan": dict(loss="non-saturating", lr_G=2e-4, lr_D=2e-4, betas=(0.5, 0.999), k=1),
    "wgan-gp": dict(loss="wasserstein-gp", lr_G=1e-4, lr_D=1e-4, betas=(0.0, 0.9), k=5),
}
# WGAN-GP with the MLP nets of build_models("mlp") (notebook 05, benchmarks/mode_collapse.py): only the loss
# and the optimiser change; the larger learning rate makes up for the fewer generator steps per second.
MLP_WGAN_GP = dict(loss="wasserstein-gp", lr_G=5e-4, lr_D=5e-4, betas=(0.5, 0.9), k=5)


def build_models(name: str, channels: int = 1, image_size: int = 28, latent_dim: int | None = None,
                 num_classes: int = 10, width: int | None = None):
    """Return ``(net_G, net_D, recipe)`` for a named model: ``mlp``, ``dcgan``, ``cgan``, ``wgan-gp``."""
    key = str(name).strip().lower()
    if key not in RECIPES:
        raise ValueError(f"Unknown model {name!r}. Choose one of: {', '.join(RECIPES)}.")
    shape = (channels, image_size, image_size)
    if key == "mlp":
        z = latent_dim or 64
        net_G = MLPGenerator(z, shape, hidden=(256, 512, 1024) if width is None else (width, 2 * width, 4 * width))
        net_D = MLPDiscriminator(shape)
    elif key == "cgan":
        z = latent_dim or 64
        net_G = MLPGenerator(z, shape, num_classes=num_classes)
        net_D = MLPDiscriminator(shape, num_classes=num_classes)
    else:
        z = latent_dim or 100
        w = width or 32
        net_G = DCGANGenerator(z, channels, image_size, w)
        net_D = DCGANDiscriminator(channels, image_size, w, norm="batch" if key == "dcgan" else "layer")
    return net_G, net_D, dict(RECIPES[key], model=key)
