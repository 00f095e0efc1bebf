"""The one training loop: every notebook and the command line train through :func:`train_gan`.

Algorithm 1 of Goodfellow et al. (2014), generalised: for each generator step, ``k``
discriminator (critic) steps, each on a fresh real batch and fresh noise; then one generator
step. The loss is pluggable (``gan_tutorial.losses.get_loss``), labels are passed to both nets
when the generator is conditional, and the loop keeps everything on one device:

* statistics stay on the device and are read back only every ``log_every`` steps (one sync);
* optional autocast: ``amp='bf16'`` (no scaler needed) or ``amp='fp16'`` (with GradScalers);
* fused Adam on CUDA; ``channels_last`` and ``compile`` are opt-in switches;
* checkpoints are written to a temporary file and renamed, so a crash never leaves half a file
  where a good checkpoint was; they load with ``weights_only=True`` and resume exactly on CPU;
* a NaN/inf guard stops with a clear message, keeping the last good checkpoint.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from . import config
from .data import ImageData, Mixture, TensorBatches
from .losses import GANLoss, get_loss
from .models import MODEL_CLASSES, eval_mode, rebuild

CHECKPOINT_FORMAT = "gan_tutorial-checkpoint-v1"


class TrainingDiverged(RuntimeError):
    """Raised when a loss or weight becomes NaN or infinite."""


@dataclass
class TrainConfig:
    """Settings of :func:`train_gan`; override any with keyword arguments."""

    num_steps: int = 1000            # generator steps (each preceded by k discriminator steps)
    batch_size: int = 64
    k: int = 1                       # discriminator steps per generator step (Algorithm 1)
    lr_G: float = 2e-4
    lr_D: float = 2e-4
    betas: tuple = (0.5, 0.999)      # Adam; beta1 = 0.5 damps the oscillating adversarial gradients
    loss: str = "non-saturating"     # or "minimax", "wasserstein", "wasserstein-gp", or a GANLoss
    device: str = "auto"
    amp: str | None = None           # None, "bf16" or "fp16"
    log_every: int = 50              # steps between history records (one host sync each)
    snapshot_every: int = 0          # steps between fixed-noise snapshots (0: only at the end)
    num_fixed: int = 64              # size of the fixed-noise batch used for snapshots
    checkpoint_path: str | None = None
    checkpoint_every: int = 0        # steps between checkpoints (0: only at the end, if a path is set)
    time_budget: float | None = None  # seconds; training stops cleanly before it is spent
    seed: int = 0
    progress: bool = True            # tqdm progress bar
    channels_last: bool = False
    compile: bool = False

    def validate(self) -> None:
        for name in ("num_steps", "batch_size", "k", "log_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.amp not in (None, "bf16", "fp16"):
            raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {self.amp!r}")
        if self.lr_G <= 0 or self.lr_D <= 0:
            raise ValueError("learning rates must be positive")


class Callback:
    """Hooks the loop calls; override the ones you need. Set ``trainer.should_stop = True`` to stop."""

    def on_train_begin(self, trainer): ...
    def on_log(self, trainer, record: dict): ...
    def on_snapshot(self, trainer, snapshot: dict): ...
    def on_train_end(self, trainer): ...


def _batches_from(data, conditional: bool, batch_size: int, device, generator):
    """Turn the accepted data types into a ``next() -> (real, labels_or_None)`` source."""
    if isinstance(data, ImageData):
        data = (data.images, data.labels) if conditional else (data.images,)
    if isinstance(data, torch.Tensor):
        data = (data,)
    if isinstance(data, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in data):
        if conditional and len(data) < 2:
            raise ValueError("the generator is conditional, so data must carry labels: pass (images, labels)")
        tensors = tuple(t.to(device) for t in data[: 2 if conditional else 1])
        return TensorBatches(*tensors, batch_size=batch_size, generator=generator)
    if isinstance(data, Mixture) or callable(data):
        if conditional:
            raise ValueError("a sampler gives no labels; conditional models need (images, labels)")
        return _SamplerBatches(data, batch_size, device, generator)
    if isinstance(data, torch.utils.data.DataLoader):
        return _LoaderBatches(data, conditional, device)
    raise TypeError(f"data of type {type(data).__name__} is not supported: pass a tensor, (images, labels), "
                    "an ImageData, a torch DataLoader, or a sampler such as gan_tutorial.data.ring_2d()")


class _SamplerBatches:
    def __init__(self, sampler, batch_size, device, generator):
        self.sampler, self.batch_size, self.device, self.generator = sampler, batch_size, device, generator
        self.epoch = 0

    def next(self):
        return (self.sampler(self.batch_size, generator=self.generator).to(self.device),)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class _LoaderBatches:
    """Batches from a DataLoader (for datasets too big to hold on the device), cycled forever.

    Its ``batch_size`` wins over the config's. Resuming restarts the loader's order: the numbers of a
    resumed run then differ from an uninterrupted one (they match exactly with tensor data).
    """

    def __init__(self, loader, conditional, device):
        self.loader, self.conditional, self.device = loader, conditional, device
        self.iterator, self.epoch = None, 0

    def next(self):
        if self.iterator is None:
            self.iterator = iter(self.loader)
        try:
            batch = next(self.iterator)
        except StopIteration:
            self.epoch += 1
            self.iterator = iter(self.loader)
            batch = next(self.iterator)
        if isinstance(batch, torch.Tensor):
            batch = (batch,)
        if self.conditional and len(batch) < 2:
            raise ValueError("the generator is conditional, so the DataLoader must yield (images, labels)")
        return tuple(t.to(self.device, non_blocking=True) for t in batch[: 2 if self.conditional else 1])

    def state_dict(self):
        return {"epoch": self.epoch}

    def load_state_dict(self, state):
        self.epoch = state.get("epoch", 0)


class Trainer:
    """Holds the nets, optimisers, history and snapshots; :meth:`fit` runs the loop."""

    def __init__(self, net_G, net_D, data, cfg: TrainConfig | None = None, callbacks=(), **overrides):
        cfg = replace(cfg or TrainConfig(), **overrides)
        cfg.validate()
        self.cfg = cfg
        self.device = config.get_device(cfg.device)
        self.loss_fn: GANLoss = get_loss(cfg.loss)
        self.net_G, self.net_D = net_G.to(self.device), net_D.to(self.device)
        self.latent_dim = getattr(net_G, "latent_dim", None)
        if self.latent_dim is None:
            raise ValueError("net_G needs a .latent_dim attribute (all gan_tutorial generators have one)")
        self.num_classes = getattr(net_G, "num_classes", 0)
        if getattr(net_D, "num_classes", 0) != self.num_classes:
            raise ValueError(f"net_G has num_classes={self.num_classes} but net_D has "
                             f"{getattr(net_D, 'num_classes', 0)}: build both with the same value")
        self.generator = torch.Generator(self.device).manual_seed(cfg.seed)
        self.batches = _batches_from(data, self.num_classes > 0, cfg.batch_size, self.device, self.generator)
        fused = {"fused": True} if self.device.type == "cuda" else {}
        self.opt_G = torch.optim.Adam(net_G.parameters(), lr=cfg.lr_G, betas=tuple(cfg.betas), **fused)
        self.opt_D = torch.optim.Adam(net_D.parameters(), lr=cfg.lr_D, betas=tuple(cfg.betas), **fused)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
        fp16 = cfg.amp == "fp16"
        self.scaler_G = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_D = torch.amp.GradScaler(self.device.type, enabled=fp16)
        if cfg.channels_last:
            self.net_G.to(memory_format=torch.channels_last)
            self.net_D.to(memory_format=torch.channels_last)
        self._G = torch.compile(self.net_G) if cfg.compile else self.net_G
        self._D = torch.compile(self.net_D) if cfg.compile else self.net_D
        fixed = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_noise = torch.randn(cfg.num_fixed, self.latent_dim, generator=fixed).to(self.device)
        self.fixed_labels = (torch.arange(cfg.num_fixed) % self.num_classes).to(self.device) if self.num_classes else None
        self.callbacks = list(callbacks)
        self.step = 0
        self.history: dict[str, list] = {}
        self.snapshots: list[dict] = []
        self.should_stop = False
        self.last_good_checkpoint: str | None = None
        self.elapsed = 0.0

    # ------------------------------------------------------------------ helpers
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16,
                              enabled=self.amp_dtype is not None)

    def _noise(self, n):
        return torch.randn(n, self.latent_dim, device=self.device, generator=self.generator)

    @torch.no_grad()
    def sample(self, n: int | None = None, labels=None, noise=None) -> torch.Tensor:
        """Generate with ``net_G`` in eval mode (float32, on the CPU). Fixed noise when ``n`` is None."""
        z = self.fixed_noise if noise is None and n is None else (noise if noise is not None else torch.randn(n, self.latent_dim, device=self.device))
        if self.num_classes and labels is None:
            labels = self.fixed_labels if n is None and noise is None else torch.arange(z.shape[0], device=self.device) % self.num_classes
        with self._autocast(), eval_mode(self.net_G):
            out = self.net_G(z.to(self.device), labels) if self.num_classes else self.net_G(z.to(self.device))
        return out.float().cpu()

    def _take_snapshot(self):
        snap = {"step": self.step, "samples": self.sample()}
        self.snapshots.append(snap)
        for cb in self.callbacks:
            cb.on_snapshot(self, snap)

    def _record(self, sums: dict, count: int):
        names = list(sums)
        values = torch.stack([sums[n] / count for n in names]).tolist()  # the one host sync
        record = {"step": self.step, "epoch": self.batches.epoch, "time": self.elapsed, **dict(zip(names, values))}
        bad = [n for n in names if not math.isfinite(record[n])]
        if bad:
            self._diverged(", ".join(f"{n}={record[n]}" for n in bad))
        for key, value in record.items():
            self.history.setdefault(key, []).append(value)
        for cb in self.callbacks:
            cb.on_log(self, record)
        return record

    def _diverged(self, what: str):
        kept = (f"The last good checkpoint (step {self._ckpt_step}) is kept at {self.last_good_checkpoint}."
                if self.last_good_checkpoint else "No checkpoint had been written yet.")
        raise TrainingDiverged(
            f"Training diverged near step {self.step}: {what}. {kept} Try a lower learning rate, "
            "a different loss (e.g. 'non-saturating' or 'wasserstein-gp'), or amp=None.")

    # ------------------------------------------------------------------ the loop
    def _d_step(self, real, labels):
        cfg = self.cfg
        with torch.no_grad(), self._autocast():
            fake = self._G(self._noise(real.shape[0]), labels) if self.num_classes else self._G(self._noise(real.shape[0]))
        self.opt_D.zero_grad(set_to_none=True)
        with self._autocast():
            loss, stats = self.loss_fn.discriminator(self._D, real, fake.to(real.dtype), labels,
                                                     generator=self.generator,
                                                     scaler=self.scaler_D if cfg.amp == "fp16" else None)
        self.scaler_D.scale(loss).backward()
        self.scaler_D.step(self.opt_D)
        self.scaler_D.update()
        self.loss_fn.after_discriminator_step(self.net_D)
        return loss.detach().float(), stats

    def _g_step(self, labels, n):
        self.opt_G.zero_grad(set_to_none=True)
        self.net_D.requires_grad_(False)  # no weight gradients for D during G's step
        with self._autocast():
            fake = self._G(self._noise(n), labels) if self.num_classes else self._G(self._noise(n))
            loss, stats = self.loss_fn.generator(self._D, fake, labels)
        self.scaler_G.scale(loss).backward()
        self.scaler_G.step(self.opt_G)
        self.scaler_G.update()
        self.net_D.requires_grad_(True)
        return loss.detach().float(), stats

    def fit(self, num_steps: int | None = None) -> "Trainer":
        """Train until ``num_steps`` generator steps in all (default ``cfg.num_steps``) or the time budget."""
        cfg = self.cfg
        target = num_steps if num_steps is not None else cfg.num_steps
        self.should_stop = False
        for cb in self.callbacks:
            cb.on_train_begin(self)
        bar = None
        if cfg.progress and target > self.step:
            from tqdm.auto import tqdm

            bar = tqdm(total=target, initial=self.step, desc=f"training ({self.loss_fn.name})", unit="step",
                       leave=False)
        sums, count, start = {}, 0, time.perf_counter() - self.elapsed
        self.net_G.train()
        self.net_D.train()
        try:
            while self.step < target and not self.should_stop:
                for _ in range(cfg.k):
                    batch = self.batches.next()
                    real = batch[0]
                    if cfg.channels_last and real.dim() == 4:
                        real = real.contiguous(memory_format=torch.channels_last)
                    labels = batch[1] if self.num_classes else None
                    loss_D, d_stats = self._d_step(real, labels)
                loss_G, g_stats = self._g_step(labels, real.shape[0])
                self.step += 1
                stats = {"loss_D": loss_D, "loss_G": loss_G, **d_stats, **g_stats}
                for key, v in stats.items():
                    sums[key] = sums[key] + v if key in sums else v.clone()
                count += 1
                now = time.perf_counter()
                step_time, self.elapsed = now - (start + self.elapsed), now - start
                # stop before a step that would likely end past the budget (the first step always runs)
                out_of_time = cfg.time_budget is not None and self.elapsed + step_time > cfg.time_budget
                last = self.step >= target or out_of_time
                if self.step % cfg.log_every == 0 or last:
                    record = self._record(sums, count)
                    sums, count = {}, 0
                    if bar is not None:
                        bar.set_postfix(loss_D=f"{record['loss_D']:.3f}", loss_G=f"{record['loss_G']:.3f}")
                if cfg.snapshot_every and self.step % cfg.snapshot_every == 0:
                    self._take_snapshot()
                if cfg.checkpoint_path and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint(cfg.checkpoint_path)
                if bar is not None:
                    bar.update(1)
                if out_of_time:
                    break
        finally:
            if bar is not None:
                bar.close()
        if not self.snapshots or self.snapshots[-1]["step"] != self.step:
            self._take_snapshot()
        if cfg.checkpoint_path:
            self.save_checkpoint(cfg.checkpoint_path)
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self

    # ------------------------------------------------------------------ checkpoints
    _ckpt_step = 0

    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        cfg = asdict(self.cfg)
        cfg["betas"] = list(cfg["betas"])
        if not isinstance(cfg["loss"], str):
            cfg["loss"] = self.loss_fn.name
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "elapsed": self.elapsed,
            "G": {"class": type(self.net_G).__name__, "hparams": getattr(self.net_G, "hparams", {}),
                  "state": self.net_G.state_dict()},
            "D": {"class": type(self.net_D).__name__, "hparams": getattr(self.net_D, "hparams", {}),
                  "state": self.net_D.state_dict()},
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "scaler_G": self.scaler_G.state_dict(), "scaler_D": self.scaler_D.state_dict(),
            "config": cfg, "loss": self.loss_fn.name, "history": self.history,
            "rng": rng, "batches": self.batches.state_dict(),
        }

    def save_checkpoint(self, path) -> Path:
        """Write a checkpoint atomically (temp file in the same folder, then rename).

        Refuses to write non-finite weights, so a diverged run never replaces a good checkpoint.
        """
        for name, net in (("net_G", self.net_G), ("net_D", self.net_D)):
            if not all(torch.isfinite(p).all() for p in net.parameters()):
                self._diverged(f"{name} has NaN/inf weights")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(self.state_dict(), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        self.last_good_checkpoint, self._ckpt_step = str(path), self.step
        return path

    def load_checkpoint(self, path) -> "Trainer":
        """Restore nets, optimisers, RNG, data order and history from ``path`` to continue training."""
        ckpt = load_checkpoint(path)
        for key, net in (("G", self.net_G), ("D", self.net_D)):
            if ckpt[key]["class"] != type(net).__name__ or ckpt[key]["hparams"] != getattr(net, "hparams", {}):
                raise ValueError(
                    f"{path} holds a {ckpt[key]['class']} with {ckpt[key]['hparams']}, but this trainer's net_{key} "
                    f"is a {type(net).__name__} with {getattr(net, 'hparams', {})}. Build the same models "
                    "(or use gan_tutorial.train.models_from_checkpoint) before resuming.")
            net.load_state_dict(ckpt[key]["state"])
        self.opt_G.load_state_dict(ckpt["opt_G"])
        self.opt_D.load_state_dict(ckpt["opt_D"])
        self.scaler_G.load_state_dict(ckpt["scaler_G"])
        self.scaler_D.load_state_dict(ckpt["scaler_D"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.generator.set_state(ckpt["rng"]["generator"])
        if "cuda" in ckpt["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], self.device)
        self.batches.load_state_dict(ckpt["batches"])
        self.step, self.elapsed = ckpt["step"], ckpt.get("elapsed", 0.0)
        self.history = {k: list(v) for k, v in ckpt["history"].items()}
        self.last_good_checkpoint, self._ckpt_step = str(path), self.step
        return self


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a gan_tutorial checkpoint safely (``weights_only=True``) with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}. Train first (python -m gan_tutorial train --out DIR) "
                                "or check the path.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{path} could not be read as a checkpoint ({type(e).__name__}: {str(e)[:200]}). "
                         "It is corrupt or not a gan_tutorial checkpoint: delete it and train again, "
                         "or point to another file.") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a gan_tutorial checkpoint (expected format {CHECKPOINT_FORMAT!r}). "
                         "Use a file written by gan_tutorial's train_gan or `python -m gan_tutorial train`.")
    return ckpt


def models_from_checkpoint(path_or_ckpt, device="cpu"):
    """Rebuild ``(net_G, net_D)`` with trained weights from a checkpoint (path or loaded dict)."""
    ckpt = path_or_ckpt if isinstance(path_or_ckpt, dict) else load_checkpoint(path_or_ckpt)
    nets = []
    for key in ("G", "D"):
        net = rebuild(ckpt[key]["class"], ckpt[key]["hparams"])
        net.load_state_dict(ckpt[key]["state"])
        nets.append(net.to(config.get_device(device)).eval())
    return tuple(nets)


def train_gan(net_G, net_D, data, cfg: TrainConfig | None = None, callbacks=(), resume: bool = False,
              **overrides) -> Trainer:
    """Train ``net_G`` against ``net_D`` on ``data`` and return the :class:`Trainer`.

    ``data``: a tensor of real samples, ``(images, labels)``, an ``ImageData``, or a sampler
    ``f(n, generator=...)`` such as ``gan_tutorial.data.ring_2d()``. ``resume=True`` continues
    from ``checkpoint_path`` when that file exists. Any ``TrainConfig`` field can be overridden
    by keyword, e.g. ``train_gan(G, D, x, num_steps=500, k=5, loss="wasserstein-gp")``.
    """
    trainer = Trainer(net_G, net_D, data, cfg, callbacks, **overrides)
    if resume:
        if not trainer.cfg.checkpoint_path:
            raise ValueError("resume=True needs checkpoint_path=...")
        if Path(trainer.cfg.checkpoint_path).is_file():
            trainer.load_checkpoint(trainer.cfg.checkpoint_path)
    return trainer.fit()


__all__ = ["TrainConfig", "Trainer", "Callback", "TrainingDiverged", "train_gan", "load_checkpoint",
           "models_from_checkpoint", "MODEL_CLASSES"]
