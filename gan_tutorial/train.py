"""The one training loop: every notebook and the command line train through :func:`train_gan`.

Algorithm 1 of Goodfellow et al. (2014), generalised: for each generator step, ``k``
discriminator (critic) steps, each on a fresh real batch and fresh noise; then one generator
step. The loss is pluggable (``gan_tutorial.losses.get_loss``), labels are passed to both nets
when the generator is conditional, and the loop keeps everything on one device:

* statistics stay on the device and are read back only every ``log_every`` steps (one sync);
* optional autocast: ``amp='bf16'`` (no scaler needed) or ``amp='fp16'`` (with GradScalers);
* fused Adam on CUDA; ``channels_last`` and ``compile`` are opt-in switches;
* an optional exponential moving average (EMA) of the generator's weights (``ema_decay``), used
  for sampling when present;
* checkpoints (``gan_tutorial.checkpoints``) are atomic, load with ``weights_only=True`` and resume
  exactly on CPU;
* a NaN/inf guard stops with a clear message, keeping the last good checkpoint;
* several processes (``torchrun``, or any process group; see :mod:`gan_tutorial.distributed`):
  both nets in DistributedDataParallel, each rank on its own shard of every epoch, rank 0 logging
  and writing.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from . import checkpoints, config, distributed
from .data import ByteBatches, ImageData, Mixture, TensorBatches, from_uint8
from .images import ImageFiles, StreamBatches
from .losses import GANLoss, get_loss
from .models import generate


class TrainingDiverged(RuntimeError):
    """Raised when a loss or weight becomes NaN or infinite."""


@dataclass
class TrainConfig:
    """Settings of :func:`train_gan`; override any with keyword arguments.

    Several processes: ``batch_size`` is per process (a step trains on ``batch_size * world_size``
    examples), and ``seed`` fixes the data order (the same on every rank) and, as ``seed + rank``,
    each rank's noise.
    """

    num_steps: int = 1000            # generator steps (each preceded by k discriminator steps)
    batch_size: int = 64             # per process when several train together
    k: int = 1                       # discriminator steps per generator step (Algorithm 1)
    lr_G: float = 2e-4
    lr_D: float = 2e-4
    betas: tuple = (0.5, 0.999)      # Adam; beta1 = 0.5 damps the oscillating adversarial gradients
    optimizer: str = "adam"          # or "rmsprop" (the WGAN paper's; ignores betas)
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
    ema_decay: float | None = None   # e.g. 0.999: sample from an exponential moving average of G's weights
    sync_bn: bool = False            # several processes on GPUs: batch norm over all ranks' batches (SyncBatchNorm)

    def validate(self) -> None:
        for name in ("num_steps", "batch_size", "k", "log_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.amp not in (None, "bf16", "fp16"):
            raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {self.amp!r}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}")
        if self.lr_G <= 0 or self.lr_D <= 0:
            raise ValueError("learning rates must be positive")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) (e.g. 0.999) or None to switch EMA off, got {self.ema_decay!r}")


class Callback:
    """Hooks the loop calls; override the ones you need. Set ``trainer.should_stop = True`` to stop.

    Several processes: every rank calls them (with the same records, averaged over ranks), except
    ``on_snapshot``, which only rank 0 calls; print only where ``trainer.is_main``. Training stops on
    every rank when ``should_stop`` is set on any.
    """

    def on_train_begin(self, trainer): ...
    def on_log(self, trainer, record: dict): ...
    def on_snapshot(self, trainer, snapshot: dict): ...
    def on_train_end(self, trainer): ...


def _batches_from(data, conditional: bool, batch_size: int, device, generator, order=None, rank=0, world_size=1):
    """Turn the accepted data types into a ``next() -> (real, labels_or_None)`` source.

    uint8 images (colour data sets) stay uint8 on the device; each batch becomes float in [-1, 1]
    when drawn. An ``ImageFiles`` is read from disk batch by batch, in an order seeded by the
    generator's seed that resumes exactly. ``order`` (default ``generator``) draws the data order;
    with ``world_size > 1`` tensors and files are read in shards, rank ``rank`` taking its own.
    """
    order = generator if order is None else order
    if isinstance(data, ImageData):
        if conditional and data.labels is None:
            raise ValueError("the generator is conditional, but this ImageData has no labels (a flat folder): "
                             "put the images in one subfolder per class, or train an unconditional model.")
        data = (data.images, data.labels) if conditional else (data.images,)
    if isinstance(data, ImageFiles):
        batches = StreamBatches(data, conditional, batch_size, device, seed=order.initial_seed())
        return distributed.shard_stream(batches, rank, world_size) if world_size > 1 else batches
    if isinstance(data, torch.Tensor):
        data = (data,)
    if isinstance(data, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in data):
        if conditional and len(data) < 2:
            raise ValueError("the generator is conditional, so data must carry labels: pass (images, labels)")
        tensors = tuple(t.to(device) for t in data[: 2 if conditional else 1])
        source = ByteBatches if tensors[0].dtype == torch.uint8 else TensorBatches
        return source(*tensors, batch_size=batch_size, generator=order, rank=rank, world_size=world_size)
    if isinstance(data, Mixture) or callable(data):
        if conditional:
            raise ValueError("a sampler gives no labels; conditional models need (images, labels)")
        return _SamplerBatches(data, batch_size, device, generator)
    if isinstance(data, torch.utils.data.DataLoader):
        if world_size > 1 and not hasattr(data.sampler, "set_epoch"):
            warnings.warn("several processes read this DataLoader, so every rank gets the same batches: give it a "
                          "torch.utils.data.DistributedSampler so that each rank reads its own shard.")
        return _LoaderBatches(data, conditional, device)
    raise TypeError(f"data of type {type(data).__name__} is not supported: pass a tensor, (images, labels), "
                    "an ImageData, an images.ImageFiles, a torch DataLoader, or a sampler such as "
                    "gan_tutorial.data.ring_2d()")


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

    Its ``batch_size`` wins over the config's; uint8 images are converted to [-1, 1]. Resuming restarts
    the loader's order (its sampler's state is its own): the numbers of a resumed run then differ from
    an uninterrupted one. They match exactly with tensor data and with ``gan_tutorial.images.ImageFiles``
    (e.g. ``load_image_folder(path, stream=True)``), whose batches the trainer reads in a resumable order.
    """

    def __init__(self, loader, conditional, device):
        self.loader, self.conditional, self.device = loader, conditional, device
        self.iterator, self.epoch = None, 0

    def _restart(self):
        if hasattr(self.loader.sampler, "set_epoch"):  # a DistributedSampler: a new order each epoch
            self.loader.sampler.set_epoch(self.epoch)
        self.iterator = iter(self.loader)

    def next(self):
        if self.iterator is None:
            self._restart()
        try:
            batch = next(self.iterator)
        except StopIteration:
            self.epoch += 1
            self._restart()
            batch = next(self.iterator)
        if isinstance(batch, torch.Tensor):
            batch = (batch,)
        if self.conditional and len(batch) < 2:
            raise ValueError("the generator is conditional, so the DataLoader must yield (images, labels)")
        batch = tuple(t.to(self.device, non_blocking=True) for t in batch[: 2 if self.conditional else 1])
        return (from_uint8(batch[0]), *batch[1:]) if batch[0].dtype == torch.uint8 else batch

    def state_dict(self):
        return {"epoch": self.epoch}

    def load_state_dict(self, state):
        self.epoch = state.get("epoch", 0)


def _check_autocast(device: torch.device, amp: str) -> None:
    """Raise if this PyTorch cannot autocast to ``amp`` on ``device`` (it would warn and run in float32)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        try:
            torch.autocast(device.type, dtype=dtype)
        except (RuntimeError, UserWarning) as e:
            other = "amp='bf16'" if amp == "fp16" else "amp='fp16'"
            raise ValueError(f"amp={amp!r} is not supported on {device.type} by torch {torch.__version__} "
                             f"({str(e)[:120]}): use {other}, amp=None, or another device.") from None


def _synchronizer(device: torch.device):
    """The function that waits for ``device`` to finish its queued work, or None where there is none."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return torch.mps.synchronize
    return None


def _optimizer(net: torch.nn.Module, lr: float, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Adam with ``cfg.betas`` (fused on CUDA), or plain RMSProp when ``cfg.optimizer == "rmsprop"``."""
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(net.parameters(), lr=lr)
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.Adam(net.parameters(), lr=lr, betas=tuple(cfg.betas), **fused)


def _ddp(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``net`` in DistributedDataParallel: rank 0's weights copied to every rank, gradients averaged in backward.

    Buffers are not synchronised before each forward: each rank keeps its own batch-norm running
    statistics (they serve only sampling, done on rank 0, whose statistics are saved). By default DDP
    copies rank 0's buffers in place before every forward, and the second forward of D in a step
    (real, then fake) then breaks the backward of the first on GPUs ("modified by an inplace
    operation", pytorch/pytorch#22095 and #175024).
    """
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    params = inspect.signature(DistributedDataParallel).parameters   # torch 2.14 renamed the switch
    no_sync = {"forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers": False}
    return DistributedDataParallel(net, device_ids=ids, **no_sync)


def _sync_batchnorm(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``net`` with SyncBatchNorm layers: batch statistics over the whole batch of all ranks (GPUs only)."""
    if device.type != "cuda":
        raise ValueError(f"sync_bn=True needs CUDA devices (SyncBatchNorm does not run on {device.type}): "
                         "drop sync_bn (each process then normalises with its own batch's statistics).")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)


def _check_labels(labels: torch.Tensor, num_classes: int) -> None:
    """Check class labels once, when data enters the trainer (not in every forward: on a GPU that waits)."""
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be integers in [0, {num_classes - 1}], got {int(labels.min())}..{int(labels.max())}: "
                         "fix the labels, or build both nets with num_classes matching them.")


class Trainer:
    """Holds the nets, optimisers, history and snapshots; :meth:`fit` runs the loop.

    Inside a process group of several processes (``torchrun``; see :mod:`gan_tutorial.distributed`)
    it trains under DistributedDataParallel: CUDA devices become ``cuda:LOCAL_RANK``, each rank
    trains on its own shard with its own noise, and only rank 0 shows progress and writes files.
    """

    def __init__(self, net_G, net_D, data, cfg: TrainConfig | None = None, callbacks=(), recipe: str | None = None,
                 dataset: str | None = None, **overrides):
        cfg = replace(cfg or TrainConfig(), **overrides)
        cfg.validate()
        self.cfg = cfg
        self.rank, self.world_size = distributed.rank(), distributed.world_size()   # 0 and 1 in one process
        self.is_main = self.rank == 0
        self.device = distributed.device_for(config.get_device(cfg.device))
        distributed.check_backend(self.device)
        self.loss_fn: GANLoss = get_loss(cfg.loss)
        self.net_G, self.net_D = net_G.to(self.device), net_D.to(self.device)
        self.latent_dim = getattr(net_G, "latent_dim", None)
        if self.latent_dim is None:
            raise ValueError("net_G needs a .latent_dim attribute (all gan_tutorial generators have one)")
        self.num_classes = getattr(net_G, "num_classes", 0)
        if getattr(net_D, "num_classes", 0) != self.num_classes:
            raise ValueError(f"net_G has num_classes={self.num_classes} but net_D has "
                             f"{getattr(net_D, 'num_classes', 0)}: build both with the same value")
        self.recipe = recipe                # the recipe's name, stored in checkpoints
        self.dataset = dataset              # the data set's name (the CLI's --dataset), stored in checkpoints
        # noise and penalty mixing: a stream per rank; data order: the same on every rank (one process: one stream)
        self.rng = torch.Generator(self.device).manual_seed(cfg.seed + self.rank)
        self.data_rng = torch.Generator(self.device).manual_seed(cfg.seed) if self.world_size > 1 else self.rng
        self.batches = _batches_from(data, self.num_classes > 0, cfg.batch_size, self.device, self.rng,
                                     order=self.data_rng, rank=self.rank, world_size=self.world_size)
        if self.num_classes and isinstance(self.batches, TensorBatches):
            _check_labels(self.batches.tensors[1], self.num_classes)
        if cfg.sync_bn and self.world_size > 1:   # before the optimisers: it replaces the batch-norm layers
            self.net_G, self.net_D = _sync_batchnorm(self.net_G, self.device), _sync_batchnorm(self.net_D, self.device)
        self.opt_G = _optimizer(self.net_G, cfg.lr_G, cfg, self.device)
        self.opt_D = _optimizer(self.net_D, cfg.lr_D, cfg, self.device)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
        if self.amp_dtype is not None:
            _check_autocast(self.device, cfg.amp)
        fp16 = cfg.amp == "fp16"  # fp16 gradients need loss scaling; bf16 has float32's range and does not
        self.scaler_G = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_D = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self._sync = _synchronizer(self.device)  # run before each clock reading: kernels run asynchronously
        if cfg.channels_last:
            self.net_G.to(memory_format=torch.channels_last)
            self.net_D.to(memory_format=torch.channels_last)
        # several processes: DDP copies rank 0's weights to every rank now (so the EMA below starts from
        # them and, averaging the synchronised weights, stays the same on every rank) and averages gradients
        self._G, self._D = self.net_G, self.net_D
        if self.world_size > 1:
            self._G, self._D = _ddp(self.net_G, self.device), _ddp(self.net_D, self.device)
        self.ema_G = None
        if cfg.ema_decay is not None:  # buffers (batch-norm statistics) are averaged too
            self.ema_G = AveragedModel(self.net_G, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
        # compiled forward passes; the gradient penalty runs net_D uncompiled (its double backward
        # is not supported by compiled graphs), so every built-in loss works with compile=True
        self._G = torch.compile(self._G) if cfg.compile else self._G
        self._D = torch.compile(self._D) if cfg.compile else self._D
        # G's step reads D without DDP's wrapper: D's weights are frozen there, so there is nothing to average
        self._D_frozen = self._D
        if self.world_size > 1:
            self._D_frozen = torch.compile(self.net_D) if cfg.compile else self.net_D
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
        if self.amp_dtype is None:
            return contextlib.nullcontext()  # AMP off: no autocast context at all
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _clock(self) -> float:
        """Seconds on the wall clock, after the device has finished the work queued so far."""
        if self._sync is not None:
            self._sync()
        return time.perf_counter()

    def _noise(self, n):
        return torch.randn(n, self.latent_dim, device=self.device, generator=self.rng)

    @property
    def sampling_G(self):
        """The generator used for samples: the EMA copy when ``ema_decay`` is set, else ``net_G``."""
        return self.ema_G.module if self.ema_G is not None else self.net_G

    def sample(self, n: int | None = None, labels=None, noise=None, ema: bool = True) -> torch.Tensor:
        """Generate in eval mode (float32, on the CPU); the fixed noise when neither ``n`` nor ``noise``
        is given. ``ema=False`` samples from the raw ``net_G`` even when an EMA copy exists."""
        if noise is None and n is None:
            noise, labels = self.fixed_noise, (self.fixed_labels if labels is None else labels)
        net = self.sampling_G if ema else self.net_G
        with self._autocast():
            return generate(net, n, noise=noise, labels=labels)

    def _take_snapshot(self):
        if not self.is_main:  # several processes: rank 0 keeps the snapshots
            return
        snap = {"step": self.step, "samples": self.sample()}
        self.snapshots.append(snap)
        for cb in self.callbacks:
            cb.on_snapshot(self, snap)

    def _record(self, sums: dict, count: int):
        names = list(sums)
        values = torch.stack([sums[n] / count for n in names])
        if self.world_size > 1:  # several processes: the average over ranks (one all_reduce per record)
            values = distributed.mean(values)
        values = values.tolist()  # the one host sync
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
        with torch.no_grad(), self._autocast():
            fake = self._G(self._noise(real.shape[0]), labels) if self.num_classes else self._G(self._noise(real.shape[0]))
        self.opt_D.zero_grad(set_to_none=True)
        with self._autocast():  # the gradient penalty needs no scaler (see losses.gradient_penalty)
            loss, stats = self.loss_fn.discriminator(self._D, real, fake.to(real.dtype), labels, generator=self.rng)
        # fp16: the scaled loss's weight gradients may overflow; the scaler then skips this step and
        # lowers its scale (the loss and statistics stay finite, so this is not taken for divergence)
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
            loss, stats = self.loss_fn.generator(self._D_frozen, fake, labels)
        self.scaler_G.scale(loss).backward()
        self.scaler_G.step(self.opt_G)
        self.scaler_G.update()
        self.net_D.requires_grad_(True)
        if self.ema_G is not None:
            self.ema_G.update_parameters(self.net_G)
        return loss.detach().float(), stats

    def fit(self, num_steps: int | None = None) -> "Trainer":
        """Train until ``num_steps`` generator steps in all (default ``cfg.num_steps``) or the time budget."""
        cfg = self.cfg
        target = num_steps if num_steps is not None else cfg.num_steps
        self.should_stop = False
        for cb in self.callbacks:
            cb.on_train_begin(self)
        bar = None
        if cfg.progress and target > self.step and self.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=target, initial=self.step, desc=f"training ({self.loss_fn.name})", unit="step",
                       leave=False)
        sums, count = {}, 0
        start = self._clock() - self.elapsed
        read_step, next_read = self.step, self.step + 1  # the step of the last clock reading; of the next budget check
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
                log_now = self.step % cfg.log_every == 0 or self.step >= target
                save_now = bool(cfg.checkpoint_path and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0)
                out_of_time = False
                if log_now or save_now or (cfg.time_budget is not None and self.step >= next_read):
                    # the clock is read only here (after a device sync on a GPU): at log and checkpoint
                    # steps, and for the budget every step on a CPU but ever more sparsely on a GPU,
                    # where each reading waits for the device (halfway to the predicted end each time)
                    now = self._clock() - start
                    step_time = (now - self.elapsed) / (self.step - read_step)
                    self.elapsed, read_step = now, self.step
                    if cfg.time_budget is not None:
                        # stop before a step that would likely end past the budget (the first step always runs)
                        steps_left = (cfg.time_budget - self.elapsed) / max(step_time, 1e-9)
                        out_of_time = steps_left < 1
                        next_read = self.step + (1 if self._sync is None else max(1, int(steps_left) // 2))
                    if self.world_size > 1:  # rank 0's clock decides for all, so every rank stops at the same step
                        self.elapsed, out_of_time, next_read = distributed.from_main(
                            [self.elapsed, out_of_time, next_read], self.device)
                        out_of_time, next_read = bool(out_of_time), int(next_read)
                if log_now or out_of_time:
                    record = self._record(sums, count)
                    sums, count = {}, 0
                    if bar is not None:
                        bar.set_postfix(loss_D=f"{record['loss_D']:.3f}", loss_G=f"{record['loss_G']:.3f}")
                snap_now = bool(cfg.snapshot_every and self.step % cfg.snapshot_every == 0)
                if snap_now:
                    self._take_snapshot()
                if self.world_size > 1 and (log_now or out_of_time or snap_now):  # after the callbacks
                    self.should_stop = distributed.any_rank(self.should_stop, self.device)
                if save_now:
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
        """Everything needed to resume (see :mod:`gan_tutorial.checkpoints`)."""
        return checkpoints.capture(self)

    def save_checkpoint(self, path) -> Path:
        """Write a checkpoint atomically. Refuses non-finite weights, so a diverged run never
        replaces a good checkpoint."""
        nets = [("net_G", self.net_G), ("net_D", self.net_D)] + ([("ema_G", self.ema_G)] if self.ema_G else [])
        for name, net in nets:  # several processes: every rank checks (the same weights, the same verdict)
            if not all(torch.isfinite(p).all() for p in net.parameters()):
                self._diverged(f"{name} has NaN/inf weights")
        if self.world_size > 1:  # call on every rank: rank 0 writes, with each rank's random state
            rngs = distributed.gather_objects(checkpoints.rng_state(self))
            if self.is_main:
                checkpoints.atomic_save(checkpoints.capture(self, rngs), path)
            distributed.barrier()   # so that every rank can read the file once this returns
        else:
            path = checkpoints.atomic_save(self.state_dict(), path)
        self.last_good_checkpoint, self._ckpt_step = str(path), self.step
        return Path(path)

    def load_checkpoint(self, path) -> "Trainer":
        """Restore nets, EMA, optimisers, RNG, data order and history from ``path`` to continue training."""
        checkpoints.restore(self, checkpoints.load(path), path)
        self.last_good_checkpoint, self._ckpt_step = str(path), self.step
        return self


# --------------------------------------------------------------------------- generic helpers
class LinearLRDecay(Callback):
    """Lowers ``lr_G`` and ``lr_D`` linearly, reaching ``final_factor`` times their starting values
    at the last step; applied each time the loop logs (every ``log_every`` steps).

    At constant learning rates a GAN keeps circling its equilibrium (each player overreacts to
    the other's last move); shrinking the steps towards the end lets the pair settle. With a
    ``time_budget`` the schedule follows whichever runs out first, steps or seconds, so a run cut
    short by the clock still ends at the small learning rate.
    """

    def __init__(self, final_factor: float = 0.05):
        if not 0 <= final_factor <= 1:
            raise ValueError(f"final_factor must be in [0, 1], got {final_factor}")
        self.final_factor = final_factor
        self.base: list | None = None
        self._trainer = None

    def on_train_begin(self, trainer):
        if trainer is not self._trainer:  # a new run: remember its starting learning rates
            self._trainer = trainer
            self.base = [(g, g["lr"]) for opt in (trainer.opt_G, trainer.opt_D) for g in opt.param_groups]

    def on_log(self, trainer, record):
        done = trainer.step / trainer.cfg.num_steps
        if trainer.cfg.time_budget:
            done = max(done, trainer.elapsed / trainer.cfg.time_budget)
        done = min(1.0, done)
        factor = 1.0 - (1.0 - self.final_factor) * done
        for group, lr in self.base:
            group["lr"] = lr * factor


def fit_critic(net_D, real_sampler, fake_sampler, loss="wasserstein-gp", num_steps: int = 500,
               batch_size: int = 256, lr: float = 1e-3, betas=(0.5, 0.9), seed: int = 0,
               record_every: int = 50, probe=None) -> dict:
    """Train ``net_D`` ALONE against a frozen generator: the inner ``max`` of the game, nothing else.

    ``loss`` is a :func:`~gan_tutorial.losses.get_loss` name or a ``GANLoss``: ``"non-saturating"``
    (or ``"minimax"``) trains a discriminator with binary cross-entropy, ``"wasserstein"`` a critic
    with weight clipping (applied after every step), ``"wasserstein-gp"`` a critic with the gradient
    penalty. The samplers are ``f(n, generator=...) -> (n, D)``, e.g. ``data.Mixture([[2.0, 0.0]], 0.1)``;
    each step draws fresh batches of ``batch_size`` from both. Adam with ``lr`` and ``betas``.
    (With 1-D data a gradient-penalty critic can get stuck with the wrong sign: its slope cannot turn
    from +1 to -1 without passing through 0, where the penalty costs ``lambda``. In 2-D it turns.)

    Every ``record_every`` steps (and after the last) the history gets ``step``, ``loss`` and the
    loss's statistics of that step (``wasserstein`` = mean f(real) - mean f(fake) for a critic,
    ``d_real``/``d_fake`` for a discriminator), plus ``probe(net_D)`` when ``probe`` is given (for
    instance a gradient measured at fixed points). This is not the GAN training loop (that is
    :class:`~gan_tutorial.train.Trainer`): no generator is trained.
    """
    if num_steps < 1 or record_every < 1:
        raise ValueError(f"num_steps and record_every must be positive, got {num_steps} and {record_every}")
    loss_fn = get_loss(loss)
    device = next(net_D.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    opt = torch.optim.Adam(net_D.parameters(), lr=lr, betas=tuple(betas))
    history: dict[str, list] = {}
    net_D.train()
    for step in range(1, num_steps + 1):
        real = real_sampler(batch_size, generator=gen).to(device)
        fake = fake_sampler(batch_size, generator=gen).to(device)
        value, stats = loss_fn.discriminator(net_D, real, fake, generator=gen)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        loss_fn.after_discriminator_step(net_D)
        if step % record_every == 0 or step == num_steps:
            row = {"step": step, "loss": float(value.detach()), **{k: float(v) for k, v in stats.items()}}
            if probe is not None:
                row["probe"] = probe(net_D)
            for key, v in row.items():
                history.setdefault(key, []).append(v)
    return history


def train_gan(net_G, net_D, data, cfg: TrainConfig | None = None, callbacks=(), resume: bool = False,
              **overrides) -> Trainer:
    """Train ``net_G`` against ``net_D`` on ``data`` and return the :class:`Trainer`.

    ``data``: a tensor of real samples (uint8 images are converted batch by batch), ``(images, labels)``,
    an ``ImageData``, an ``images.ImageFiles`` (read from disk), a DataLoader, or a sampler
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


__all__ = ["TrainConfig", "Trainer", "Callback", "TrainingDiverged", "train_gan", "LinearLRDecay", "fit_critic"]
