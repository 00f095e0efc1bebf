"""Figures: image grids, training curves, live plots and snapshot animations."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .data import from_uint8
from .models import generate
from .train import Callback


def _as_float(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] on the CPU (uint8 pixels, as the colour data sets keep them, are converted)."""
    images = images.detach().cpu()
    return from_uint8(images) if images.dtype == torch.uint8 else images.float()


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> torch.Tensor:
    """Tile ``(N, C, H, W)`` images in [-1, 1] (or uint8 0..255) into one ``(H', W', C)`` array in [0, 1]."""
    from torchvision.utils import make_grid

    images = _as_float(images)
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    grid = make_grid(images, nrow=nrow, padding=padding, normalize=True, value_range=(-1, 1), pad_value=1.0)
    return grid.permute(1, 2, 0)


def _pixels(grid: torch.Tensor):
    """An ``image_grid`` as the NumPy array ``imshow`` takes: ``(H, W)`` for grey, ``(H, W, 3)`` for colour."""
    grid = grid.detach().cpu().numpy()
    return grid.squeeze(-1) if grid.shape[-1] == 1 else grid


def show_grid(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None, figsize=(4, 4)):
    """Show a grid of images in [-1, 1]; returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    ax.imshow(_pixels(image_grid(images, nrow)), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def save_grid(images: torch.Tensor, path, nrow: int = 8) -> None:
    """Write a grid of images in [-1, 1] (or uint8 0..255) to a PNG file (colour for 3 channels)."""
    from torchvision.utils import save_image

    save_image(_as_float(images), str(path), nrow=nrow, normalize=True, value_range=(-1, 1),
               pad_value=1.0)


def plot_history(history: dict, axes=None, title: str | None = None):
    """Two panels: the losses, and D's mean output on real and fake data (or the critic's scores)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    steps = history["step"]
    axes[0].plot(steps, history["loss_D"], label="loss D")
    axes[0].plot(steps, history["loss_G"], label="loss G")
    if "wasserstein" in history:
        axes[0].plot(steps, history["wasserstein"], label="Wasserstein estimate")
    axes[0].set_xlabel("generator step")
    axes[0].legend()
    axes[0].set_title(title or "losses")
    axes[1].plot(steps, history["d_real"], label="D(x), real")
    axes[1].plot(steps, history["d_fake"], label="D(G(z)), fake")
    if "wasserstein" not in history:
        axes[1].axhline(0.5, color="gray", lw=0.8, ls="--", label="0.5 = D cannot tell")
        axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_xlabel("generator step")
    axes[1].legend()
    axes[1].set_title("discriminator outputs" if "wasserstein" not in history else "critic scores")
    plt.tight_layout()
    return axes


class LivePlot(Callback):
    """Redraw the training curves (and the latest fixed-noise grid for images) in a notebook.

    Redraws at most every ``every`` log records; outside IPython it does nothing.
    """

    def __init__(self, every: int = 1, show_samples: bool = True):
        self.every, self.show_samples, self.handle, self.count = every, show_samples, None, 0

    def on_train_begin(self, trainer):
        try:
            from IPython.display import display

            self.handle = display(display_id=True)
        except ImportError:  # pragma: no cover
            self.handle = None

    def on_log(self, trainer, record):
        self.count += 1
        if self.handle is None or self.count % self.every:
            return
        images = trainer.snapshots[-1]["samples"] if trainer.snapshots and self.show_samples else None
        show_img = images is not None and images.dim() == 4
        fig, axes = plt.subplots(1, 3 if show_img else 2, figsize=(13 if show_img else 10, 3.2))
        plot_history(trainer.history, axes[:2])
        if show_img:
            show_grid(images[:36], nrow=6, ax=axes[2], title=f"fixed noise, step {trainer.snapshots[-1]['step']}")
        self.handle.update(fig)
        plt.close(fig)


def animate_snapshots(snapshots, nrow: int = 8, interval: int = 400, max_frames: int = 20):
    """An HTML (JavaScript) animation of fixed-noise image snapshots; returns the HTML object."""
    from IPython.display import HTML
    from matplotlib import animation

    if not snapshots:
        raise ValueError("no snapshots to animate: train with snapshot_every > 0")
    stride = max(1, len(snapshots) // max_frames)
    frames = snapshots[::stride]
    if frames[-1] is not snapshots[-1]:
        frames.append(snapshots[-1])
    fig, ax = plt.subplots(figsize=(4, 4))
    im = ax.imshow(_pixels(image_grid(frames[0]["samples"], nrow)), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()

    def draw(i):
        im.set_data(_pixels(image_grid(frames[i]["samples"], nrow)))
        ax.set_title(f"step {frames[i]['step']}")
        return (im,)

    anim = animation.FuncAnimation(fig, draw, frames=len(frames), interval=interval, blit=False)
    with plt.rc_context({"animation.frame_format": "jpeg"}):  # about 5x smaller than PNG frames
        html = HTML(anim.to_jshtml(default_mode="once"))
    plt.close(fig)
    return html


def plot_samples_2d(samples: torch.Tensor, mixture=None, ax=None, title: str | None = None, lim: float | None = None):
    """Scatter 2-D samples, with the mixture's mode centres as crosses when given."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    s = samples.detach().float().cpu()
    ax.scatter(s[:, 0], s[:, 1], s=3, alpha=0.4, label="generated")
    if mixture is not None:
        m = mixture.means
        ax.scatter(m[:, 0], m[:, 1], marker="x", color="red", s=40, label="modes")
        lim = lim or float(m.abs().max()) * 1.5
    if lim:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- latent space and classes
def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, num: int = 8, method: str = "slerp") -> torch.Tensor:
    """``num`` latent vectors on the way from ``z0`` to ``z1`` (both ends included), shape ``(num, D)``.

    ``method='lerp'``: the straight line ``(1 - t) z0 + t z1``. ``method='slerp'``: the great-circle
    path ``sin((1 - t) w) / sin(w) z0 + sin(t w) / sin(w) z1`` with ``w`` the angle between the two.
    For Gaussian noise in many dimensions slerp keeps the norm near ``sqrt(D)``, where nearly all
    training noise lies; the midpoint of a straight line is shorter by a factor of about
    ``1/sqrt(2)``. Nearly parallel vectors fall back to lerp.
    """
    z0, z1 = torch.as_tensor(z0).flatten().float(), torch.as_tensor(z1).flatten().float()
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have the same size, got {z0.numel()} and {z1.numel()}")
    if num < 2:
        raise ValueError(f"num must be at least 2 (the two ends), got {num}")
    if method not in ("lerp", "slerp"):
        raise ValueError(f"method must be 'lerp' or 'slerp', got {method!r}")
    t = torch.linspace(0, 1, num, device=z0.device)[:, None]
    if method == "slerp":
        cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
        omega = torch.arccos(cos.clamp(-1.0, 1.0))
        if float(torch.sin(omega)) > 1e-4:
            return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)
    return (1 - t) * z0 + t * z1


@torch.no_grad()
def plot_interpolation(net_G, num_rows: int = 4, num_steps: int = 10, method: str = "slerp", seed: int = 0,
                       ax=None, title: str | None = None):
    """Rows of images along latent paths between random pairs of noise vectors.

    Each row starts at one image (left) and ends at another (right); a smooth change in between
    means nearby codes give similar images. Returns ``(ax, images)`` with images ``(rows*steps, C, H, W)``.
    """
    g = torch.Generator().manual_seed(seed)
    ends = torch.randn(num_rows, 2, net_G.latent_dim, generator=g)
    z = torch.cat([interpolate_latents(a, b, num_steps, method) for a, b in ends])
    images = generate(net_G, noise=z)
    if ax is None:
        _, ax = plt.subplots(figsize=(num_steps * 0.7, num_rows * 0.75))
    show_grid(images, nrow=num_steps, ax=ax, title=title or f"{method} between random codes (left to right)")
    return ax, images


def plot_class_histogram(hist, ax=None, title: str | None = None, threshold: float = 0.03):
    """Bar chart of the share of samples the classifier assigns to each class.

    ``hist``: the dict from ``gan_tutorial.metrics.class_histogram`` (its ``fractions``) or a
    sequence of fractions. A dashed line marks the uniform share ``1/K``; bars under ``threshold``
    (a class the generator nearly never draws: a sign of mode collapse) are red.
    """
    fractions = hist["fractions"] if isinstance(hist, dict) else hist
    fractions = [float(f) for f in torch.as_tensor(fractions).flatten()]
    if not fractions:
        raise ValueError("no fractions to plot")
    k = len(fractions)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 2.6))
    colours = ["tab:red" if f < threshold else "tab:blue" for f in fractions]
    ax.bar(range(k), fractions, color=colours)
    ax.axhline(1 / k, color="gray", ls="--", lw=0.8, label=f"uniform 1/{k}")
    ax.axhline(threshold, color="tab:red", ls=":", lw=0.8, label=f"{threshold:.0%}")
    ax.set_xticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("share of samples")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title or f"class histogram (smallest share {min(fractions):.1%})")
    return ax


def plot_by_class(images: torch.Tensor, predictions, num_classes: int = 10, per_class: int = 8, ax=None,
                  title: str | None = None):
    """One row per class: up to ``per_class`` of ``images`` that a classifier put in that class.

    Empty places (a class with fewer samples) stay white, so a missing digit shows as a blank row.
    Returns the axes.
    """
    images = images.detach().float().cpu()
    predictions = torch.as_tensor(predictions).flatten().cpu()
    if predictions.shape[0] != images.shape[0]:
        raise ValueError(f"got {predictions.shape[0]} predictions for {images.shape[0]} images")
    blank = torch.ones_like(images[:1])  # white in [-1, 1]
    rows = []
    for c in range(num_classes):
        chosen = images[predictions == c][:per_class]
        rows.append(torch.cat([chosen, blank.expand(per_class - chosen.shape[0], *images.shape[1:])]))
    if ax is None:
        _, ax = plt.subplots(figsize=(per_class * 0.55, num_classes * 0.55))
    show_grid(torch.cat(rows), nrow=per_class, ax=ax, title=title or "samples sorted by predicted class")
    return ax


def show_class_grid(images: torch.Tensor, per_class: int, class_names=None, ax=None, title: str | None = None):
    """Class-major samples (row ``c`` = ``per_class`` images asked for with label ``c``), each row
    named on the left. ``images``: ``(K * per_class, C, H, W)`` in [-1, 1], e.g. from
    ``gan_tutorial.conditional.class_grid_samples``. Returns the axes.
    """
    images = images.detach().float().cpu()
    if images.dim() != 4 or per_class < 1 or images.shape[0] % per_class:
        raise ValueError(f"expected (K * {per_class}, C, H, W) images, got {tuple(images.shape)}")
    k, height, pad = images.shape[0] // per_class, images.shape[-2], 2
    names = [str(c) for c in range(k)] if class_names is None else [str(n) for n in class_names]
    if len(names) != k:
        raise ValueError(f"got {len(names)} class names for {k} rows")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * per_class + 0.6, 0.55 * k))
    ax.imshow(_pixels(image_grid(images, nrow=per_class, padding=pad)), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([pad + r * (height + pad) + height / 2 for r in range(k)], names)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_ylabel("label asked for")
    if title:
        ax.set_title(title)
    return ax
