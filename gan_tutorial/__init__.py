"""gan_tutorial: the helper package behind the GAN tutorial notebooks.

Modules: ``config`` (mode, device, seeds, folders), ``data`` (toy mixtures, MNIST), ``images``
(CIFAR-10, CelebA, folders of images), ``models``,
``losses``, ``train`` (the one training loop), ``metrics``, ``plotting`` and ``widgets``.
"""
from . import config, data, losses, models, train
from .config import classroom, fast_mode, get_device, pick, seed_everything
from .train import TrainConfig, Trainer, train_gan

__version__ = "0.1.0"
__all__ = ["classroom", "config", "data", "losses", "models", "train", "fast_mode", "get_device", "pick",
           "seed_everything", "TrainConfig", "Trainer", "train_gan"]
