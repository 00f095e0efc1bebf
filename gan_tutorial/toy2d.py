"""2-D toy experiments: small nets, recipes, quality tracking, critic surfaces, mode-collapse runs
and an interactive playground.

The 2-D mixtures of :mod:`gan_tutorial.data` (``ring_2d()``: 8 Gaussians, ``grid_2d()``: 25) are the
standard test of mode collapse: one can *see* every sample and count the modes it lands on.

* :func:`toy_models` / :func:`recipe` / :func:`train_toy` -- the nets and settings (the registry's toy recipes) the
  notebook, the benchmark and the tests share;
* :func:`fit_critic` -- a discriminator or critic trained alone against a frozen generator (the
  inner ``max`` of the game), to compare what each loss learns about two fixed distributions;
* :func:`sliced_wasserstein` and :class:`QualityTracker` -- a data-vs-sample distance and mode
  coverage recorded while training, to set beside the critic's Wasserstein estimate;
* :func:`critic_surface` / :func:`plot_critic_surface` -- the critic (or discriminator) as a
  landscape over the plane;
* :func:`mode_collapse_experiment` / :func:`format_table` -- methods x mixtures x seeds -> table;
* :class:`Playground` -- an ipywidgets panel that trains on button presses only.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import torch

from . import data as _data
from . import metrics
from . import recipes
from .losses import WassersteinLoss, get_loss
from .models import eval_mode
from .train import Callback, LinearLRDecay, Trainer, fit_critic

MIXTURES = {"ring-8": _data.ring_2d, "grid-25": _data.grid_2d}

# The toys' nets and settings are the registry's "toy-gan", "toy-wgan" and "toy-wgan-gp" recipes
# (gan_tutorial.recipes); make_trainer adds a learning rate that falls linearly to 0 over the run
# (train.LinearLRDecay), so that samples settle inside the narrow modes at the end.
METHODS = ("gan", "wgan", "wgan-gp")
TOY_HIDDEN = (64, 64, 64)


def toy_models(latent_dim: int = 2, hidden=TOY_HIDDEN, seed: int | None = None, critic_hidden=None):
    """``(net_G, net_D)`` for 2-D data (the toy recipes' nets): ReLU MLP generator (no batch norm,
    linear output) and a LeakyReLU MLP critic with a raw score output (no Sigmoid, so it serves every
    loss). ``critic_hidden`` (default: ``hidden``) sets the critic's layer widths separately.

    Batch norm is left out on purpose: it mixes the samples of a batch, and the gradient penalty
    is defined per sample.
    """
    if seed is not None:
        torch.manual_seed(seed)
    return recipes.get("toy-gan").build(latent_dim=latent_dim, hidden=hidden, critic_hidden=critic_hidden)


def recipe(method: str) -> dict:
    """A copy of the ``train_gan`` settings for ``method`` (``gan``, ``wgan``, ``wgan-gp``)."""
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    return recipes.get(f"toy-{method}").train_kwargs()


def make_trainer(method: str, mixture, seed: int = 0, callbacks=(), latent_dim: int = 2,
                 hidden=TOY_HIDDEN, critic_hidden=None, lr_decay: bool = True, **overrides) -> Trainer:
    """A :class:`~gan_tutorial.train.Trainer` for ``method`` on ``mixture`` (not yet trained).

    ``overrides`` are ``train_gan`` settings (``num_steps``, ``lr_D``, ``loss`` ...). With
    ``lr_decay`` both learning rates fall linearly to 0 at ``num_steps`` (:class:`~gan_tutorial.train.LinearLRDecay`).
    """
    net_G, net_D = toy_models(latent_dim, hidden, seed=seed, critic_hidden=critic_hidden)
    settings = dict(recipe(method), seed=seed, progress=False, log_every=50)
    settings.update(overrides)
    callbacks = list(callbacks)
    if lr_decay:
        callbacks.append(LinearLRDecay(final_factor=0.0))
    return Trainer(net_G, net_D, mixture, callbacks=callbacks, **settings)


def train_toy(method: str, mixture, num_steps: int, seed: int = 0, **kwargs) -> Trainer:
    """Build and train toy nets with ``method``'s recipe; returns the trained ``Trainer``."""
    return make_trainer(method, mixture, seed=seed, num_steps=num_steps, **kwargs).fit()


# --------------------------------------------------------------------------- measuring
def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, num_projections: int = 128,
                       generator: torch.Generator | None = None) -> float:
    """Sliced Wasserstein-1 distance between two equal-size point clouds ``(N, D)``.

    The mean over random unit directions ``u`` of the exact 1-D distance
    ``W1(<a, u>, <b, u>)`` (sorted projections, as in :func:`metrics.wasserstein_1d`). It is a
    true distance between distributions, cheap in any dimension, and zero only when they match.
    """
    a, b = torch.as_tensor(a).double().flatten(1), torch.as_tensor(b).double().flatten(1)
    if a.shape != b.shape:
        raise ValueError(f"point clouds must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    u = torch.randn(a.shape[1], num_projections, generator=generator, dtype=torch.float64)
    u = u / u.norm(dim=0, keepdim=True)                                  # (D, P) unit directions
    pa, pb = (a @ u).sort(dim=0).values, (b @ u).sort(dim=0).values       # (N, P) each
    return float((pa - pb).abs().mean())


def evaluate(samples: torch.Tensor, mixture, seed: int = 0) -> dict:
    """Mode coverage, share of high-quality samples and sliced W1 to fresh data (same size)."""
    g = torch.Generator().manual_seed(seed)
    real = mixture.sample(samples.shape[0], generator=g)
    cov = metrics.mode_coverage(samples, mixture)
    return {"modes_covered": cov["modes_covered"], "num_modes": cov["num_modes"],
            "high_quality": cov["high_quality"], "sliced_w1": sliced_wasserstein(samples, real, generator=g)}


class QualityTracker(Callback):
    """At every ``every``-th log record, sample ``num_samples`` points and store their quality.

    Fills ``self.history`` with ``step``, ``modes_covered``, ``high_quality``, ``sliced_w1`` and
    the critic's own ``wasserstein`` estimate (when the loss has one) at that step. The samples
    come from a fixed noise batch, so the curve does not wobble from resampling.
    """

    def __init__(self, mixture, num_samples: int = 1000, every: int = 1, seed: int = 123):
        self.mixture, self.num_samples, self.every, self.seed = mixture, num_samples, every, seed
        self.noise = None
        self.history: dict[str, list] = {}
        self._count = 0

    def _measure(self, trainer):
        if self.noise is None:
            g = torch.Generator().manual_seed(self.seed)
            self.noise = torch.randn(self.num_samples, trainer.latent_dim, generator=g)
        row = {"step": trainer.step, **evaluate(trainer.sample(noise=self.noise), self.mixture, self.seed)}
        if "wasserstein" in trainer.history:
            row["wasserstein"] = trainer.history["wasserstein"][-1]
        for key, value in row.items():
            self.history.setdefault(key, []).append(value)

    def on_log(self, trainer, record):
        self._count += 1
        if self._count % self.every == 0:
            self._measure(trainer)


# --------------------------------------------------------------------------- pictures
@torch.no_grad()
def critic_surface(net_D, lim: float = 3.0, resolution: int = 120):
    """Evaluate ``net_D`` on a ``resolution x resolution`` grid over ``[-lim, lim]^2``.

    Returns ``(xs, ys, scores)`` with ``scores[i, j] = net_D([xs[j], ys[i]])`` (rows are y, ready
    for ``contourf(xs, ys, scores)``). Raw scores: logits for a GAN discriminator, critic values
    for a WGAN.
    """
    xs = torch.linspace(-lim, lim, resolution)
    gy, gx = torch.meshgrid(xs, xs, indexing="ij")
    points = torch.stack([gx.flatten(), gy.flatten()], dim=1)             # (R*R, 2)
    device = next(net_D.parameters(), torch.empty(0)).device
    with eval_mode(net_D):
        scores = net_D(points.to(device)).float().cpu().reshape(resolution, resolution)
    return xs, xs.clone(), scores


def plot_critic_surface(net_D, samples=None, mixture=None, ax=None, lim: float | None = None,
                        resolution: int = 120, title: str | None = None, colorbar: bool = False):
    """Filled contours of the critic over the plane, with samples (dots) and modes (crosses)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    if lim is None:
        lim = float(mixture.means.abs().max()) * 1.5 if mixture is not None else 3.0
    xs, ys, scores = critic_surface(net_D, lim, resolution)
    cs = ax.contourf(xs, ys, scores, levels=20, cmap="coolwarm")
    if colorbar:
        ax.figure.colorbar(cs, ax=ax, shrink=0.8)
    if samples is not None:
        s = torch.as_tensor(samples).float().cpu()
        ax.scatter(s[:, 0], s[:, 1], s=2, c="black", alpha=0.5)
    if mixture is not None:
        m = mixture.means
        ax.scatter(m[:, 0], m[:, 1], marker="x", c="lime", s=30, linewidths=1.5)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- mode collapse
def mode_collapse_experiment(methods=("gan", "wgan-gp"), mixtures=("ring-8", "grid-25"), seeds=(0, 1, 2),
                             num_steps: int | dict = 2000, time_budget: float | None = None,
                             num_samples: int = 2500, verbose: bool = True, keep_samples: bool = False,
                             track_quality: bool = False, keep_trainers: bool = False, **overrides) -> list[dict]:
    """Train every method on every mixture for every seed; return one row per run.

    ``num_steps`` may be a dict keyed by method (e.g. fewer steps for the slower WGAN-GP, or the
    same number of steps for all). ``time_budget`` (seconds) stops each run early. Each row holds
    ``method, mixture, seed, steps, seconds`` (of training) ``, modes_covered, num_modes, high_quality, sliced_w1``
    measured on ``num_samples`` fresh samples (and ``samples`` themselves with ``keep_samples=True``).
    ``track_quality=True`` adds a :class:`QualityTracker` to every run and stores its history under
    ``quality_history``; ``keep_trainers=True`` keeps each trained ``Trainer`` under ``trainer`` (its
    ``history`` holds the losses and, for WGANs, the critic's estimate), so curves can be drawn later.
    """
    rows = []
    for mixture_name in mixtures:
        mixture = MIXTURES[mixture_name]() if isinstance(mixture_name, str) else mixture_name
        for method in methods:
            steps = num_steps[method] if isinstance(num_steps, dict) else num_steps
            for seed in seeds:
                tracker = QualityTracker(mixture) if track_quality else None
                run_overrides = dict(overrides)
                if tracker is not None:
                    run_overrides["callbacks"] = [*run_overrides.get("callbacks", ()), tracker]
                trainer = train_toy(method, mixture, steps, seed=seed, time_budget=time_budget, **run_overrides)
                seconds = trainer.elapsed  # training time, as the time budget counts it
                g = torch.Generator().manual_seed(10_000 + seed)
                noise = torch.randn(num_samples, trainer.latent_dim, generator=g)
                row = {"method": method, "mixture": str(mixture_name), "seed": seed, "steps": trainer.step,
                       "seconds": seconds, **evaluate(trainer.sample(noise=noise), mixture, seed)}
                if keep_samples:
                    row["samples"] = trainer.sample(noise=noise[:1000])
                if tracker is not None:
                    row["quality_history"] = tracker.history
                if keep_trainers:
                    row["trainer"] = trainer
                rows.append(row)
                if verbose:
                    print(f"{row['mixture']:>8} {method:>8} seed {seed}: {row['modes_covered']:2d}/"
                          f"{row['num_modes']} modes, {100 * row['high_quality']:5.1f}% high quality, "
                          f"{row['steps']} steps in {seconds:.1f} s", flush=True)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean (and min/max of modes) over seeds, one row per (mixture, method), in first-seen order."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["mixture"], r["method"]), []).append(r)
    out = []
    for (mixture, method), rs in groups.items():
        n = len(rs)
        out.append({"mixture": mixture, "method": method, "runs": n, "num_modes": rs[0]["num_modes"],
                    "modes_mean": sum(r["modes_covered"] for r in rs) / n,
                    "modes_min": min(r["modes_covered"] for r in rs),
                    "modes_max": max(r["modes_covered"] for r in rs),
                    "high_quality_mean": sum(r["high_quality"] for r in rs) / n,
                    "sliced_w1_mean": sum(r["sliced_w1"] for r in rs) / n,
                    "seconds_mean": sum(r["seconds"] for r in rs) / n,
                    "steps_mean": sum(r["steps"] for r in rs) / n})
    return out


def format_table(rows: list[dict], per_seed: bool = True, timings: bool = True) -> str:
    """A Markdown table: per-seed results (optional) and the mean over seeds for each method."""
    head = "| mixture | method | seed | modes covered | high-quality samples | sliced W1 |"
    rule = "|---|---|---|---|---|---|"
    if timings:
        head, rule = head + " steps | time per run |", rule + "---|---|"
    lines = [head, rule]

    def line(mixture, method, seed, modes, hq, sw, steps, secs):
        text = f"| {mixture} | {method} | {seed} | {modes} | {hq} | {sw} |"
        return text + (f" {steps} | {secs} |" if timings else "")

    summary = summarise(rows)
    for s in summary:
        if per_seed:
            for r in rows:
                if (r["mixture"], r["method"]) == (s["mixture"], s["method"]):
                    lines.append(line(r["mixture"], r["method"], r["seed"], f"{r['modes_covered']}/{r['num_modes']}",
                                      f"{100 * r['high_quality']:.1f} %", f"{r['sliced_w1']:.3f}", r["steps"],
                                      f"{r['seconds']:.1f} s"))
        lines.append(line(f"**{s['mixture']}**", f"**{s['method']}**", f"mean of {s['runs']}",
                          f"**{s['modes_mean']:.1f}**/{s['num_modes']}", f"**{100 * s['high_quality_mean']:.1f} %**",
                          f"{s['sliced_w1_mean']:.3f}", f"{s['steps_mean']:.0f}", f"{s['seconds_mean']:.1f} s"))
    return "\n".join(lines)



# --------------------------------------------------------------------------- playground
class _PlotEvery(Callback):
    """Calls ``draw()`` after every ``every`` log records (the playground's live view)."""

    def __init__(self, draw, every: int = 1):
        self.draw, self.every, self.count = draw, every, 0

    def on_log(self, trainer, record):
        self.count += 1
        if self.count % self.every == 0:
            self.draw()


def plot_run(trainer: Trainer, mixture, num_points: int = 500):
    """The playground's picture of a toy run: samples on the critic's surface, and its loss curves."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    plot_critic_surface(trainer.net_D, trainer.sample(num_points), mixture, ax=axes[0],
                        title=f"samples on the critic, step {trainer.step}", resolution=80)
    h = trainer.history
    if h.get("step"):
        key = "wasserstein" if "wasserstein" in h else "loss_D"
        axes[1].plot(h["step"], h[key], label="Wasserstein estimate" if key == "wasserstein" else "loss D")
        axes[1].plot(h["step"], h["loss_G"], label="loss G", alpha=0.7)
        axes[1].set_xlabel("generator step")
        axes[1].legend()
    fig.tight_layout()
    return fig


class Playground:
    """An interactive 2-D GAN lab: pick the data, the loss, learning rates and critic steps, then
    press *Train* to run a chunk of generator steps and watch the samples and the critic's surface.

    Building it trains nothing, so it is safe in headless runs. Training happens only on a button
    press (or a call to :meth:`train`), in chunks through ``Trainer.fit``; a callback redraws the
    view every few log records. Changing the loss, the data or the width starts a fresh model;
    learning rates, betas and critic steps are applied to the running one.

    ``pg = Playground(); pg.ui`` shows it in a notebook.
    """

    LOSSES = ("non-saturating", "minimax", "wasserstein", "wasserstein-gp")

    def __init__(self, mixture: str = "ring-8", loss: str = "wasserstein-gp", lr: float = 3e-3, k: int = 5,
                 chunk: int = 200, seed: int = 0, num_points: int = 500, redraw_every: int = 2):
        import ipywidgets as w

        self.seed, self.num_points, self.redraw_every = seed, num_points, redraw_every
        self.trainer: Trainer | None = None
        self._built_for = None
        style = {"description_width": "110px"}
        self.w_mixture = w.Dropdown(options=list(MIXTURES), value=mixture, description="data", style=style)
        self.w_loss = w.Dropdown(options=list(self.LOSSES), value=loss, description="loss", style=style)
        self.w_lr_G = w.FloatLogSlider(value=lr, base=10, min=-5, max=-2, step=0.25, description="lr generator",
                                       readout_format=".0e", style=style)
        self.w_lr_D = w.FloatLogSlider(value=lr, base=10, min=-5, max=-2, step=0.25, description="lr critic",
                                       readout_format=".0e", style=style)
        self.w_beta1 = w.FloatSlider(value=0.5, min=0.0, max=0.9, step=0.1, description="Adam beta1", style=style)
        self.w_k = w.IntSlider(value=k, min=1, max=10, description="critic steps k", style=style)
        gp_weight = recipe("wgan-gp")["loss"].gp_weight
        self.w_gp = w.FloatLogSlider(value=gp_weight, base=10, min=-1, max=2, step=0.25, description="GP weight λ",
                                     readout_format=".2g", style=style)
        self.w_clip = w.FloatLogSlider(value=0.01, base=10, min=-3, max=0, step=0.25, description="clip c",
                                       readout_format=".3g", style=style)
        self.w_chunk = w.IntSlider(value=chunk, min=50, max=2000, step=50, description="steps per press",
                                   style=style)
        self.b_train = w.Button(description="Train", button_style="success", icon="play")
        self.b_reset = w.Button(description="Reset", icon="refresh")
        self.status = w.Label(value="Press Train to start (nothing has been trained yet).")
        self.out = w.Output()
        self.b_train.on_click(lambda _: self.train())
        self.b_reset.on_click(lambda _: self.reset())
        controls = w.VBox([self.w_mixture, self.w_loss, self.w_lr_G, self.w_lr_D, self.w_beta1, self.w_k,
                           self.w_gp, self.w_clip, self.w_chunk, w.HBox([self.b_train, self.b_reset])])
        self.ui = w.VBox([w.HBox([controls, self.out]), self.status])

    # ------------------------------------------------------------------ model handling
    def _loss(self):
        name = self.w_loss.value
        if name == "wasserstein-gp":
            return get_loss(name, gp_weight=self.w_gp.value)
        if name == "wasserstein":
            return get_loss(name, clip=self.w_clip.value)
        return get_loss(name)

    def _settings(self) -> dict:
        return dict(lr_G=self.w_lr_G.value, lr_D=self.w_lr_D.value, betas=(self.w_beta1.value, 0.9 if
                    self.w_loss.value.startswith("wasserstein") else 0.999), k=self.w_k.value)

    def reset(self) -> None:
        """Forget the current model; the next :meth:`train` starts from fresh weights."""
        self.trainer, self._built_for = None, None
        self.status.value = "Reset: the next press of Train starts from fresh weights."
        with self.out:
            self.out.clear_output()

    def _ensure_trainer(self) -> Trainer:
        key = (self.w_mixture.value, self.w_loss.value)
        settings = self._settings()
        if self.trainer is None or key != self._built_for:
            mixture = MIXTURES[self.w_mixture.value]()
            net_G, net_D = toy_models(seed=self.seed)
            self.trainer = Trainer(net_G, net_D, mixture, loss=self._loss(), batch_size=recipe("gan")["batch_size"],
                                   seed=self.seed, progress=False, log_every=50,
                                   callbacks=[_PlotEvery(self.draw, self.redraw_every)], **settings)
            self.mixture, self._built_for = mixture, key
        else:  # same model: apply the new settings to the running trainer
            tr = self.trainer
            tr.cfg = replace(tr.cfg, **settings)
            tr.loss_fn = self._loss()
            for opt, lr in ((tr.opt_G, settings["lr_G"]), (tr.opt_D, settings["lr_D"])):
                for group in opt.param_groups:
                    group["lr"], group["betas"] = lr, settings["betas"]
        return self.trainer

    # ------------------------------------------------------------------ actions
    def train(self, num_steps: int | None = None) -> Trainer:
        """Run ``num_steps`` (default: the slider) more generator steps and redraw."""
        tr = self._ensure_trainer()
        steps = int(num_steps if num_steps is not None else self.w_chunk.value)
        self.status.value = f"training {steps} steps with {tr.loss_fn.name} ..."
        try:
            tr.fit(tr.step + steps)
        except Exception as e:  # show the problem in the panel (e.g. divergence) instead of a traceback
            self.status.value = f"stopped: {type(e).__name__}: {str(e)[:200]}  Press Reset to start again."
            return tr
        q = evaluate(tr.sample(2000), self.mixture, self.seed)
        self.status.value = (f"step {tr.step} ({tr.elapsed:.1f} s of training): {q['modes_covered']}/{q['num_modes']}"
                             f" modes, {100 * q['high_quality']:.0f}% high-quality samples, "
                             f"sliced W1 {q['sliced_w1']:.3f}")
        self.draw()
        return tr

    def draw(self) -> None:
        """Redraw samples on the critic's surface and the loss curves into the output area."""
        import matplotlib.pyplot as plt

        if self.trainer is None:
            return
        fig = plot_run(self.trainer, self.mixture, num_points=self.num_points)
        from IPython.display import display

        with self.out:
            self.out.clear_output(wait=True)
            display(fig)
        plt.close(fig)


__all__ = ["MIXTURES", "METHODS", "TOY_HIDDEN", "toy_models", "recipe", "make_trainer", "train_toy", "fit_critic",
           "sliced_wasserstein", "evaluate", "QualityTracker", "critic_surface", "plot_critic_surface",
           "mode_collapse_experiment", "summarise", "format_table", "plot_run", "Playground"]
