"""The 2014 GAN paper's theory on a 1-D grid, Figure 1 from real training snapshots, and an explorer.

Everything here works on densities sampled on a grid ``x`` (shape ``(N,)``) and integrates with
the trapezoid rule:

* :func:`optimal_discriminator` -- ``D*(x) = p_data(x) / (p_data(x) + p_g(x))`` (Proposition 1);
* :func:`value_function` -- ``V(D, G) = ∫ p_data log D + p_g log(1 - D) dx``;
* :func:`js_divergence` -- ``JS(p || q) = ½ KL(p || m) + ½ KL(q || m)`` with ``m = (p + q) / 2``,
  so that ``V(D*, G) = -log 4 + 2 JS(p_data || p_g)`` (Theorem 1) can be checked numerically;
* :func:`kde` -- a Gaussian kernel density estimate, to turn generator samples into ``p_g``;
* :func:`nonsaturating_objective` -- ``E_{p_g}[-log D*]`` and its split into
  ``KL(p_g || p_data) - 2 JS(p_data || p_g)`` plus a term without generated samples (Arjovsky & Bottou 2017);
* :class:`Figure1Recorder` -- a training-loop callback that stores, at every snapshot, the
  generated samples and the discriminator's curve ``D(x)`` on the grid (and, if asked, both nets' weights);
* :func:`generator_sampler`, :func:`fit_discriminator`, :func:`fit_generator` -- one player trained
  against the other, frozen: the separate stages of the paper's Figure 1 (b) and (c);
* :class:`LinearLRDecay` -- a callback that lowers both learning rates linearly while training;
* :func:`plot_figure1` / :func:`plot_figure1_panels` -- the paper's Figure 1 drawn from those frames;
* :class:`ToyExplorer` -- an ipywidgets explorer: scrub through the frames, change ``lr_G``,
  ``lr_D``, ``k`` and the loss, and retrain on demand. Building it never trains or waits.
"""
from __future__ import annotations

import math

import torch

from .models import eval_mode
from .train import Callback, LinearLRDecay, fit_critic, train_gan


# --------------------------------------------------------------------------- grids and densities
def make_grid(lo: float = -2.0, hi: float = 8.0, num: int = 2001) -> torch.Tensor:
    """Evenly spaced points ``(num,)`` in float64 on which densities are evaluated."""
    if not hi > lo or num < 2:
        raise ValueError(f"need hi > lo and num >= 2, got lo={lo}, hi={hi}, num={num}")
    return torch.linspace(lo, hi, num, dtype=torch.float64)


def density(dist, x: torch.Tensor) -> torch.Tensor:
    """Density of ``dist`` on the grid ``x`` (float64): a 1-D ``data.Mixture`` (computed exactly from its
    means, stds and weights) or any callable ``f(x) -> density``."""
    x = torch.as_tensor(x, dtype=torch.float64)
    if all(hasattr(dist, a) for a in ("means", "stds", "weights")):  # a data.Mixture: exact, in float64
        if dist.dim != 1:
            raise ValueError(f"density() is for 1-D distributions, got dim={dist.dim}")
        m, sd, w = dist.means.double()[:, 0], dist.stds.double(), dist.weights.double()
        z = (x.reshape(-1, 1) - m) / sd                                   # (N, K)
        p = (w * torch.exp(-0.5 * z**2) / (sd * math.sqrt(2 * math.pi))).sum(1)
    else:
        p = torch.as_tensor(dist(x), dtype=torch.float64)
    return p.reshape(x.shape)


def _check_densities(*ps: torch.Tensor) -> list[torch.Tensor]:
    out = [torch.as_tensor(p, dtype=torch.float64) for p in ps]
    shape = out[0].shape
    for p in out:
        if p.shape != shape:
            raise ValueError(f"densities must share one shape, got {[tuple(q.shape) for q in out]}")
        if (p < 0).any() or not torch.isfinite(p).all():
            raise ValueError("densities must be finite and non-negative")
    return out


def integrate(y: torch.Tensor, x: torch.Tensor) -> float:
    """Trapezoid rule ``∫ y dx`` on the grid ``x``."""
    return float(torch.trapezoid(torch.as_tensor(y, dtype=torch.float64), torch.as_tensor(x, dtype=torch.float64)))


# --------------------------------------------------------------------------- the theory
def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """``D*(x) = p_data(x) / (p_data(x) + p_g(x))``, the best discriminator for a fixed generator.

    Where both densities are 0 nothing is ever sampled and every value of D is equally good;
    we return 1/2 there. Shapes: any (the same for both); returns float64 of that shape.

    >>> optimal_discriminator(torch.tensor([1.0, 2.0, 0.0]), torch.tensor([1.0, 0.0, 0.0]))
    tensor([0.5000, 1.0000, 0.5000], dtype=torch.float64)
    """
    p_data, p_g = _check_densities(p_data, p_g)
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(1e-300), torch.full_like(total, 0.5))


def value_function(d: torch.Tensor, p_data: torch.Tensor, p_g: torch.Tensor, x: torch.Tensor) -> float:
    """``V(D, G) = ∫ p_data(x) log D(x) + p_g(x) log(1 - D(x)) dx`` on the grid ``x``.

    ``d`` holds D's outputs (probabilities) on the grid. ``0 · log 0`` counts as 0, so D may be
    exactly 0 or 1 where the matching density vanishes; elsewhere a D that rounded to exactly 0 or
    1 is read as 1e-308 away from it (its term is then tiny compared with the others).
    """
    p_data, p_g = _check_densities(p_data, p_g)
    d = torch.as_tensor(d, dtype=torch.float64)
    if d.shape != p_data.shape:
        raise ValueError(f"d has shape {tuple(d.shape)} but the densities have {tuple(p_data.shape)}")
    if (d < 0).any() or (d > 1).any():
        raise ValueError("d must hold probabilities in [0, 1] (apply a sigmoid to logits first)")
    tiny = torch.finfo(torch.float64).tiny  # D rounded to exactly 0 or 1 in floating point stays finite
    integrand = torch.xlogy(p_data, d.clamp_min(tiny)) + torch.xlogy(p_g, (1 - d).clamp_min(tiny))
    return integrate(integrand, x)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, x: torch.Tensor) -> float:
    """``KL(p || q) = ∫ p log(p / q) dx`` on the grid (``inf`` where p > 0 = q)."""
    p, q = _check_densities(p, q)
    if ((p > 0) & (q == 0)).any():
        return math.inf
    return integrate(torch.xlogy(p, p) - torch.xlogy(p, q), x)


def js_divergence(p: torch.Tensor, q: torch.Tensor, x: torch.Tensor) -> float:
    """Jensen-Shannon divergence ``½ KL(p || m) + ½ KL(q || m)``, ``m = (p + q) / 2``, in nats.

    0 for identical densities, ``log 2`` for densities with disjoint supports.
    """
    p, q = _check_densities(p, q)
    m = (p + q) / 2
    return 0.5 * kl_divergence(p, m, x) + 0.5 * kl_divergence(q, m, x)


def nonsaturating_objective(p_data: torch.Tensor, p_g: torch.Tensor, x: torch.Tensor) -> dict:
    """The non-saturating generator loss against the best discriminator, and what it is made of.

    With ``D* = p_data / (p_data + p_g)`` (so ``1 - D* = p_g / (p_data + p_g)``),
    ``-log D* = log(p_g / p_data) - log(1 - D*)``; averaging over ``p_g`` and using
    ``V(D*, G) = -log 4 + 2 JS`` for ``E_{p_g}[log(1 - D*)]`` gives the identity

        E_{p_g}[-log D*] = KL(p_g || p_data) - 2 JS(p_data || p_g) + log 4 + E_{p_data}[log D*].

    The last term averages over *data* only: with D held at D* while the generator takes its step
    it does not move, so the generator's gradient is that of ``KL(p_g || p_data) - 2 JS`` (Arjovsky
    & Bottou 2017, Theorem 2.5). Returns a dict of floats: ``loss`` (the left side, computed
    directly), ``reverse_kl``, ``js``, ``data_term`` (``E_{p_data}[log D*]``) and ``rhs`` (the right side).
    ``reverse_kl`` is ``inf`` where ``p_g`` puts mass where ``p_data`` is exactly 0.
    """
    p_data, p_g = _check_densities(p_data, p_g)
    d_star = optimal_discriminator(p_data, p_g)
    tiny = torch.finfo(torch.float64).tiny
    loss = integrate(-torch.xlogy(p_g, d_star.clamp_min(tiny)), x)
    data_term = integrate(torch.xlogy(p_data, d_star.clamp_min(tiny)), x)
    reverse_kl, js = kl_divergence(p_g, p_data, x), js_divergence(p_data, p_g, x)
    rhs = reverse_kl - 2 * js + math.log(4) + data_term
    return {"loss": loss, "reverse_kl": reverse_kl, "js": js, "data_term": data_term, "rhs": rhs}


def kde(samples: torch.Tensor, x: torch.Tensor, bandwidth: float | None = None) -> torch.Tensor:
    """Gaussian kernel density estimate of 1-D ``samples`` on the grid ``x`` (float64, shape of ``x``).

    ``bandwidth`` defaults to Silverman's rule ``0.9 min(std, IQR / 1.34) n^(-1/5)``.
    """
    s = torch.as_tensor(samples, dtype=torch.float64).flatten()
    if s.numel() < 2:
        raise ValueError("need at least 2 samples for a density estimate")
    x = torch.as_tensor(x, dtype=torch.float64)
    if bandwidth is None:
        q = torch.quantile(s, torch.tensor([0.25, 0.75], dtype=torch.float64))
        spread = min(float(s.std()), float(q[1] - q[0]) / 1.34) or float(s.std()) or 1e-3
        bandwidth = 0.9 * spread * s.numel() ** -0.2
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    out = torch.zeros_like(x)
    for chunk in s.split(4096):  # (N_grid, chunk) at a time keeps memory small
        z = (x[:, None] - chunk[None, :]) / bandwidth
        out += torch.exp(-0.5 * z**2).sum(1)
    return out / (s.numel() * bandwidth * math.sqrt(2 * math.pi))


# --------------------------------------------------------------------------- discriminators on a grid
@torch.no_grad()
def discriminator_on_grid(net_D, x: torch.Tensor) -> torch.Tensor:
    """``D(x) = sigmoid(net_D(x))`` on the grid, float64 on the CPU (net_D's mode is restored)."""
    with eval_mode(net_D):
        device = next(net_D.parameters()).device
        scores = net_D(torch.as_tensor(x, dtype=torch.float32).reshape(-1, 1).to(device))
    return torch.sigmoid(scores.double().cpu()).reshape(torch.as_tensor(x).shape)


def fit_discriminator(net_D, real_sampler, fake_sampler, num_steps: int = 1000, batch_size: int = 512,
                      lr: float = 1e-3, seed: int = 0) -> list[float]:
    """Train ``net_D`` alone against a FIXED generator (``fake_sampler``) with ``losses.d_loss``.

    This is the inner maximisation ``max_D V(D, G)`` on its own, not the GAN training loop
    (that is :func:`gan_tutorial.train_gan`). Samplers are ``f(n, generator=...) -> (n, 1)``,
    e.g. ``data.gaussian_1d(4, 0.5)``. Returns the loss every step. It is
    :func:`gan_tutorial.train.fit_critic` with the minimax loss and Adam(0.5, 0.999).
    """
    history = fit_critic(net_D, real_sampler, fake_sampler, loss="minimax", num_steps=num_steps,
                         batch_size=batch_size, lr=lr, betas=(0.5, 0.999), seed=seed, record_every=1)
    return history["loss"]


def generator_sampler(net_G):
    """A FROZEN generator as a sampler ``f(n, generator=None) -> (n, out)``: noise from ``generator``,
    no gradients, eval mode (net_G's mode is restored). Feed it to :func:`fit_discriminator`."""
    device = next(net_G.parameters()).device

    @torch.no_grad()
    def sample(n, generator=None):
        z = torch.randn(n, net_G.latent_dim, generator=generator,
                        device=generator.device if generator is not None else device)
        with eval_mode(net_G):
            return net_G(z.to(device))

    return sample


def fit_generator(net_G, net_D, num_steps: int = 10, batch_size: int = 256, lr: float = 5e-4,
                  betas=(0.0, 0.9), loss: str = "non-saturating", seed: int = 0) -> list[float]:
    """Train ``net_G`` alone against a FROZEN discriminator ``net_D``: ``num_steps`` generator steps.

    The paper's Figure 1 (c): "after an update to G, the gradient of D has guided G(z) to flow to
    regions that are more likely to be classified as data". ``loss`` is ``"non-saturating"`` or
    ``"minimax"`` (``losses.get_loss`` names); Adam with ``lr`` and ``betas``; fresh noise each step
    from a generator seeded with ``seed``. D's weights are never changed (nor get gradients).
    Returns the generator loss of every step. Not the GAN loop (that is :func:`gan_tutorial.train_gan`).
    """
    from .losses import get_loss

    if num_steps < 1:
        raise ValueError(f"num_steps must be positive, got {num_steps}")
    loss_fn = get_loss(loss)
    device = next(net_G.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    opt = torch.optim.Adam(net_G.parameters(), lr=lr, betas=tuple(betas))
    was_training, needs_grad = net_G.training, [p.requires_grad for p in net_D.parameters()]
    net_D.requires_grad_(False)
    net_G.train()
    history = []
    try:
        with eval_mode(net_D):
            for _ in range(num_steps):
                fake = net_G(torch.randn(batch_size, net_G.latent_dim, generator=gen, device=device))
                value, _stats = loss_fn.generator(net_D, fake)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
                history.append(float(value.detach()))
    finally:
        for p, flag in zip(net_D.parameters(), needs_grad):
            p.requires_grad_(flag)
        net_G.train(was_training)
    return history


# --------------------------------------------------------------------------- callbacks
class Figure1Recorder(Callback):
    """Records a *frame* at every snapshot of :func:`~gan_tutorial.train_gan`.

    Each frame is ``{"step", "samples" (num_fixed,), "d" (len(x),)}``: the fixed-noise samples
    and the discriminator's probability ``D(x)`` on the grid ``x``. With ``record_initial``,
    a frame is also taken when training begins (step 0: the untrained pair). With
    ``keep_weights``, each frame also holds ``"net_G"`` and ``"net_D"``: CPU copies of both nets'
    ``state_dict`` at that moment, so a frame can be loaded back (``net.load_state_dict``) and
    trained further on its own. Use ``num_fixed`` of ~2000 in ``train_gan`` for smooth density estimates.
    """

    def __init__(self, x: torch.Tensor, record_initial: bool = True, keep_weights: bool = False):
        self.x = torch.as_tensor(x, dtype=torch.float64)
        self.record_initial = record_initial
        self.keep_weights = keep_weights
        self.frames: list[dict] = []

    def _frame(self, trainer, step, samples):
        frame = {"step": int(step), "samples": samples.detach().double().flatten().cpu(),
                 "d": discriminator_on_grid(trainer.net_D, self.x)}
        if self.keep_weights:
            for name, net in (("net_G", trainer.net_G), ("net_D", trainer.net_D)):
                frame[name] = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        return frame

    def on_train_begin(self, trainer):
        if self.record_initial and not self.frames:
            self.frames.append(self._frame(trainer, trainer.step, trainer.sample()))

    def on_snapshot(self, trainer, snapshot):
        self.frames.append(self._frame(trainer, snapshot["step"], snapshot["samples"]))


# --------------------------------------------------------------------------- Figure 1
DATA_STYLE = dict(color="black", ls=":", lw=2.0, label=r"$p_{data}$")
GEN_STYLE = dict(color="tab:green", ls="-", lw=2.0, label=r"$p_g$ (KDE of samples)")
D_STYLE = dict(color="tab:blue", ls="--", lw=2.0, label=r"$D(x)$")
DSTAR_STYLE = dict(color="tab:blue", ls="-", lw=0.8, alpha=0.5, label=r"$D^*(x)$ for this $p_g$")


def plot_figure1(frame: dict, x: torch.Tensor, p_data: torch.Tensor, ax=None, title: str | None = None,
                 show_dstar: bool = True, rug: int = 150, ymax: float | None = None):
    """One panel of Figure 1: data density (black dots), generator density (green), D(x) (blue dashes).

    ``frame`` comes from :class:`Figure1Recorder`. ``show_dstar`` adds the best discriminator
    for this frame's generator (thin line), drawn only where the data or the generator put at
    least 2% of their peak density (elsewhere D* is a ratio of two vanishing densities: noise). ``rug`` draws that
    many generated samples as ticks under the curves, like the x-line at the foot of the paper's
    figure. Densities and D share one y axis (D in [0, 1]); ``ymax`` defaults to a height that
    fits D and the data density, so a very narrow generator density may run off the top.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    x = torch.as_tensor(x, dtype=torch.float64)
    p_g = kde(frame["samples"], x)
    ax.plot(x, p_data, **DATA_STYLE)
    ax.plot(x, p_g, **GEN_STYLE)
    if show_dstar:
        d_star = optimal_discriminator(p_data, p_g)
        seen = (p_data > 0.02 * float(p_data.max())) | (p_g > 0.02 * float(p_g.max()))
        ax.plot(x, torch.where(seen, d_star, torch.full_like(d_star, float("nan"))), **DSTAR_STYLE)
    ax.plot(x, frame["d"], **D_STYLE)
    top = ymax or max(1.05, float(p_data.max()) * 1.3)
    if rug:
        s = frame["samples"][:rug]
        ax.plot(s, torch.full_like(s, -0.04 * top), "|", color="tab:green", ms=6, alpha=0.5)
    ax.set_ylim(-0.08 * top, top)
    ax.set_xlim(float(x[0]), float(x[-1]))
    ax.set_xlabel("x")
    ax.set_title(title if title is not None else f"generator step {frame['step']}")
    return ax


def plot_figure1_panels(frames, x, p_data, titles=None, show_dstar: bool = True, figsize=(15, 3.3)):
    """Figure 1 (a)-(d) style: one panel per frame, with a shared legend. Returns the figure."""
    import matplotlib.pyplot as plt

    frames = list(frames)
    fig, axes = plt.subplots(1, len(frames), figsize=figsize, sharey=True)
    axes = [axes] if len(frames) == 1 else list(axes)
    ymax = max(1.05, float(torch.as_tensor(p_data).max()) * 1.3)
    for i, (frame, ax) in enumerate(zip(frames, axes)):
        title = titles[i] if titles else f"({'abcdefgh'[i % 8]}) step {frame['step']}"
        plot_figure1(frame, x, p_data, ax=ax, title=title, show_dstar=show_dstar, ymax=ymax)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the explorer
class ToyExplorer:
    """Scrub through the frames of a 1-D GAN run and retrain it with other settings.

    Args:
        frames: frames from :class:`Figure1Recorder` to show first (may be empty).
        x: the grid; target: the data distribution (a ``data.Mixture``).
        make_models: ``() -> (net_G, net_D)``, fresh models for each retrain.
        num_steps, snapshot_every, lr_G, lr_D, k, loss: the starting values of the controls.
        train_kwargs: any other ``train_gan`` settings (``batch_size``, ``betas``, ``num_fixed``...).

    Building it draws the last frame and returns at once: training only happens when the
    "retrain" button is clicked (or :meth:`retrain` is called). Show it with ``display(explorer)``.
    """

    def __init__(self, frames, x, target, make_models, num_steps: int = 1500, snapshot_every: int = 100,
                 lr_G: float = 1e-3, lr_D: float = 1e-3, k: int = 1, loss: str = "non-saturating",
                 train_kwargs: dict | None = None):
        from .widgets import _widgets

        w = _widgets()
        self.x = torch.as_tensor(x, dtype=torch.float64)
        self.target, self.make_models = target, make_models
        self.p_data = density(target, self.x)
        self.train_kwargs = dict(train_kwargs or {})
        self.frames = list(frames)
        self.trainer = None
        style = {"description_width": "initial"}
        self.slider = w.IntSlider(value=max(0, len(self.frames) - 1), min=0, max=max(0, len(self.frames) - 1),
                                  description="snapshot", continuous_update=False)
        self.lr_G = w.FloatLogSlider(value=lr_G, base=10, min=-5, max=-2, step=0.25, description="lr_G",
                                     readout_format=".1e", continuous_update=False)
        self.lr_D = w.FloatLogSlider(value=lr_D, base=10, min=-5, max=-2, step=0.25, description="lr_D",
                                     readout_format=".1e", continuous_update=False)
        self.k = w.IntSlider(value=k, min=1, max=10, description="k (D steps)", style=style,
                             continuous_update=False)
        self.loss = w.Dropdown(options=["non-saturating", "minimax"], value=loss, description="loss")
        self.num_steps = w.IntSlider(value=num_steps, min=100, max=10000, step=100, description="G steps",
                                     continuous_update=False)
        self.button = w.Button(description="retrain", icon="refresh", button_style="primary")
        self.status = w.Label(value=self._status_text())
        self.out = w.Output()
        self.snapshot_every = snapshot_every
        self.slider.observe(lambda change: self.render(), names="value")
        self.button.on_click(lambda _button: self.retrain())
        controls = w.VBox([w.HBox([self.lr_G, self.lr_D]), w.HBox([self.k, self.loss]),
                           w.HBox([self.num_steps, self.button])])
        self.widget = w.VBox([controls, w.HBox([self.slider, self.status]), self.out])
        self.render()

    def _status_text(self) -> str:
        if not self.frames:
            return "no run yet: press retrain"
        f = self.frames[self.slider.value]
        s = f["samples"]
        return f"step {f['step']}: mean {float(s.mean()):.2f}, std {float(s.std()):.2f}"

    def render(self) -> None:
        """Redraw the selected frame (no training)."""
        import matplotlib.pyplot as plt

        self.status.value = self._status_text()
        if not self.frames:
            return
        fig, ax = plt.subplots(figsize=(7, 3.2))
        plot_figure1(self.frames[self.slider.value], self.x, self.p_data, ax=ax)
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        with self.out:
            self.out.clear_output(wait=True)
            try:
                from IPython.display import display

                display(fig)
            except ImportError:  # pragma: no cover
                pass
        plt.close(fig)

    def settings(self) -> dict:
        """The ``train_gan`` keyword arguments the controls currently describe."""
        return dict(self.train_kwargs, num_steps=int(self.num_steps.value), k=int(self.k.value),
                    lr_G=float(self.lr_G.value), lr_D=float(self.lr_D.value), loss=self.loss.value,
                    snapshot_every=max(1, int(self.num_steps.value) // 30) if self.snapshot_every is None
                    else self.snapshot_every, progress=False)

    def retrain(self, **overrides):
        """Train fresh models with the current settings (plus ``overrides``) and show the new frames."""
        cfg = dict(self.settings(), **overrides)
        self.button.disabled = True
        self.status.value = f"training {cfg['num_steps']} steps ({cfg['loss']}, k={cfg['k']})..."
        try:
            recorder = Figure1Recorder(self.x)
            extra = list(cfg.pop("callbacks", []))
            net_G, net_D = self.make_models()
            self.trainer = train_gan(net_G, net_D, self.target, callbacks=[recorder, *extra], **cfg)
            self.frames = recorder.frames
            self.slider.max = len(self.frames) - 1
            self.slider.value = len(self.frames) - 1
        finally:
            self.button.disabled = False
        self.render()
        return self.trainer

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


__all__ = ["make_grid", "density", "integrate", "optimal_discriminator", "value_function", "kl_divergence",
           "js_divergence", "nonsaturating_objective", "kde", "discriminator_on_grid", "fit_discriminator",
           "generator_sampler", "fit_generator", "Figure1Recorder",
           "LinearLRDecay", "plot_figure1", "plot_figure1_panels", "ToyExplorer"]
