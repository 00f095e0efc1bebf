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


@torch.no_grad()
def generate(net_G: nn.Module, num: int | None = None, *, noise=None, labels=None, seed: int | None = None,
             batch_size: int = 500) -> torch.Tensor:
    """Samples from ``net_G`` in eval mode, as a float32 CPU tensor; the net's mode is restored.

    ``noise``: ``(N, latent_dim)``, or ``None`` for ``num`` fresh vectors drawn on the CPU (from a
    generator seeded with ``seed`` when given, else from torch's global RNG), so the same seed gives
    the same images on any device. ``labels`` (conditional generators only): ``(N,)`` integers,
    default ``0, 1, ..., K-1, 0, ...``. The one place the package draws samples from a generator.
    """
    dim = getattr(net_G, "latent_dim", None)
    if dim is None:
        raise ValueError("net_G needs a .latent_dim attribute (all gan_tutorial generators have one)")
    device = next(net_G.parameters()).device
    if noise is None:
        if num is None:
            raise ValueError("pass num (how many samples) or noise")
        noise = torch.randn(num, dim, generator=None if seed is None else torch.Generator().manual_seed(seed))
    noise = torch.as_tensor(noise, dtype=torch.float32)
    if noise.dim() != 2 or noise.shape[1] != dim:
        raise ValueError(f"noise must have shape (N, {dim}), got {tuple(noise.shape)}")
    k = getattr(net_G, "num_classes", 0)
    if k and labels is None:
        labels = torch.arange(noise.shape[0]) % k
    if labels is not None:
        labels = torch.as_tensor(labels).long().reshape(-1)
        if labels.shape[0] != noise.shape[0]:
            raise ValueError(f"got {labels.shape[0]} labels for {noise.shape[0]} noise vectors")
    out = []
    with eval_mode(net_G):
        for i in range(0, noise.shape[0], batch_size):
            z = noise[i : i + batch_size].to(device)
            y = None if labels is None else labels[i : i + batch_size].to(device)
            out.append((net_G(z) if y is None else net_G(z, y)).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


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
        labels = torch.as_tensor(labels).long().reshape(-1)
        if labels.shape[0] != batch:
            raise ValueError(f"got {labels.shape[0]} labels for a batch of {batch}")
        # values are checked only for labels on the CPU: on a GPU the check would make every forward
        # wait for the device (the training loop checks its data once, when it comes in)
        if labels.device.type == "cpu" and labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must be in [0, {self.num_classes - 1}], "
                             f"got {int(labels.min())}..{int(labels.max())}")
        return F.one_hot(labels.to(device), self.num_classes).float()


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


class ProjectionMLPDiscriminator(_Conditional):
    """Projection discriminator on an MLP: ``x (B, *in_shape), y (B,) -> score (B,)``.

    ``phi(x)`` is an MLP (LeakyReLU(0.2), no normalisation) giving ``(B, F)`` features with
    ``F = hidden[-1]``. The score is the unconditional part ``w . phi(x) + b`` plus the
    label-dependent part ``e_y . phi(x)``, where ``e_y`` is row ``y`` of a learned ``(num_classes, F)``
    table. Compared with concatenating a one-hot label to 784 pixels, the label here acts on
    every feature at once, so the discriminator uses it from the first steps. No Sigmoid.
    """

    def __init__(self, in_shape=(1, 28, 28), hidden=(512, 256), num_classes=10, activation="leaky_relu"):
        super().__init__()
        if num_classes < 1:
            raise ValueError("a projection discriminator needs num_classes >= 1; use models.MLPDiscriminator "
                             "for an unconditional one")
        self.hparams = dict(in_shape=list(_shape(in_shape)), hidden=list(hidden), num_classes=num_classes,
                            activation=activation)
        self.num_classes, self.in_shape = num_classes, _shape(in_shape)
        layers, width = [], math.prod(self.in_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), _activation(activation)]
            width = h
        self.features = nn.Sequential(*layers)            # (B, F)
        self.head = nn.Linear(width, 1)                   # w . phi(x) + b
        self.embed = nn.Embedding(num_classes, width)     # e_y, one row per class
        nn.init.normal_(self.embed.weight, 0.0, 1.0 / math.sqrt(width))  # the scale of a Linear layer's weights

    def forward(self, x, labels=None):
        if x.dim() < 2 or tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"expected inputs of shape (B, {', '.join(map(str, self.in_shape))}), "
                             f"got {tuple(x.shape)}")
        y = self._one_hot(labels, x.shape[0], x.device)   # checks the labels, (B, num_classes)
        h = self.features(x.reshape(x.shape[0], -1))      # (B, F)
        e = y.to(h.dtype) @ self.embed.weight.to(h.dtype)  # (B, F): e_y for each sample
        return self.head(h).view(-1) + (h * e).sum(dim=1)  # (B,)


MODEL_CLASSES = {cls.__name__: cls for cls in (MLPGenerator, MLPDiscriminator, ProjectionMLPDiscriminator,
                                                DCGANGenerator, DCGANDiscriminator)}


def rebuild(class_name: str, hparams: dict) -> nn.Module:
    """Rebuild a model from its class name and ``hparams`` (as stored in a checkpoint)."""
    if class_name not in MODEL_CLASSES:
        raise ValueError(f"Unknown model class {class_name!r} in checkpoint; known: {', '.join(MODEL_CLASSES)}.")
    return MODEL_CLASSES[class_name](**hparams)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
