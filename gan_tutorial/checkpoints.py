"""Checkpoints: atomic writes, safe loads (``weights_only=True``), the trainer's resume state, and
rebuilding trained nets from a file.

A checkpoint is a plain dict of tensors, numbers and strings::

    {"format": FORMAT, "step", "elapsed", "recipe" (name or None), "dataset" (name or None),
     "G": {"class", "hparams", "state"}, "D": {...}, "G_ema": {"state", "n_averaged"} or None,
     "opt_G", "opt_D", "scaler_G", "scaler_D", "config", "loss", "history", "rng", "batches"}

plus ``"rng_ranks"`` (every rank's random state, rank 0's first) when several processes trained.

It is written to a temporary file in the same folder and then renamed, so a crash never leaves
half a file where a good checkpoint was. RNG states are stored on the CPU, so a checkpoint written
on a GPU loads and resumes on a machine without one.
"""
from __future__ import annotations

import os
import warnings
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from . import config
from .models import rebuild

FORMAT = "gan_tutorial-checkpoint-v1"


def atomic_save(obj, path) -> Path:
    """``torch.save(obj)`` to ``path`` through a temporary file and a rename (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)                       # mkstemp makes it private (0600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load(path, map_location="cpu") -> dict:
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
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else None
        what = f"a checkpoint of another layout ({found!r})" if found else "not a gan_tutorial checkpoint"
        raise ValueError(f"{path} is {what}; this version reads {FORMAT!r}. Train it again with this version "
                         "(python -m gan_tutorial train --model NAME), or use the version that wrote it.")
    return ckpt


def rng_state(trainer) -> dict:
    """This process's random state: torch's, the trainer's generator(s) and, on a GPU, CUDA's."""
    rng = {"torch": torch.get_rng_state(), "rng": trainer.rng.get_state(), "rng_device": trainer.rng.device.type}
    if trainer.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(trainer.device).cpu()
    if getattr(trainer, "data_rng", trainer.rng) is not trainer.rng:   # several processes: the shared data order
        rng["data"] = trainer.data_rng.get_state()
    return rng


def capture(trainer, rng_ranks: list | None = None) -> dict:
    """Everything needed to continue ``trainer`` exactly: nets, EMA, optimisers, scalers, RNG, data order.

    ``rng_ranks``: every rank's :func:`rng_state` (gathered by the trainer) when several processes train.
    """
    rng = rng_ranks[0] if rng_ranks else rng_state(trainer)
    cfg = asdict(trainer.cfg)
    cfg["betas"] = list(cfg["betas"])
    if not isinstance(cfg["loss"], str):
        cfg["loss"] = trainer.loss_fn.name

    def net(module):
        return {"class": type(module).__name__, "hparams": getattr(module, "hparams", {}),
                "state": module.state_dict()}

    ema = trainer.ema_G
    return {
        "format": FORMAT, "step": trainer.step, "elapsed": trainer.elapsed, "recipe": trainer.recipe,
        "dataset": getattr(trainer, "dataset", None),
        "G": net(trainer.net_G), "D": net(trainer.net_D),
        "G_ema": None if ema is None else {"state": ema.module.state_dict(), "n_averaged": ema.n_averaged},
        "opt_G": trainer.opt_G.state_dict(), "opt_D": trainer.opt_D.state_dict(),
        "scaler_G": trainer.scaler_G.state_dict(), "scaler_D": trainer.scaler_D.state_dict(),
        "config": cfg, "loss": trainer.loss_fn.name, "history": trainer.history,
        "rng": rng, "batches": trainer.batches.state_dict(),
        **({"rng_ranks": rng_ranks} if rng_ranks and len(rng_ranks) > 1 else {}),
    }


def restore(trainer, ckpt: dict, path="checkpoint") -> None:
    """Put ``trainer`` back in the state :func:`capture` recorded (the nets must match the file's)."""
    for key, net in (("G", trainer.net_G), ("D", trainer.net_D)):
        if ckpt[key]["class"] != type(net).__name__ or ckpt[key]["hparams"] != getattr(net, "hparams", {}):
            raise ValueError(
                f"{path} holds a {ckpt[key]['class']} with {ckpt[key]['hparams']}, but this trainer's net_{key} "
                f"is a {type(net).__name__} with {getattr(net, 'hparams', {})}. Build the same models "
                "(or use gan_tutorial.checkpoints.models_from_checkpoint) before resuming.")
        net.load_state_dict(ckpt[key]["state"])
    ema = ckpt.get("G_ema")
    if (ema is None) != (trainer.ema_G is None):
        raise ValueError(f"{path} was written with ema_decay={ckpt['config'].get('ema_decay')} but this trainer has "
                         f"ema_decay={trainer.cfg.ema_decay}: resume with the same setting.")
    if ema is not None:
        trainer.ema_G.module.load_state_dict(ema["state"])
        trainer.ema_G.n_averaged.copy_(torch.as_tensor(ema["n_averaged"]))
    trainer.opt_G.load_state_dict(ckpt["opt_G"])
    trainer.opt_D.load_state_dict(ckpt["opt_D"])
    trainer.scaler_G.load_state_dict(ckpt["scaler_G"])
    trainer.scaler_D.load_state_dict(ckpt["scaler_D"])
    rank, world = getattr(trainer, "rank", 0), getattr(trainer, "world_size", 1)
    ranks = ckpt.get("rng_ranks") or [ckpt["rng"]]
    rng = ranks[rank] if rank < len(ranks) else ranks[0]
    torch.set_rng_state(rng["torch"].cpu())
    state = rng.get("rng", rng.get("generator"))   # "generator": files before the rename
    if len(ranks) != world:  # the noise of ranks that did not exist cannot be continued: fresh, seeded streams
        trainer.rng.manual_seed(trainer.cfg.seed + rank + ckpt["step"])
        warnings.warn(f"{path} was written by {len(ranks)} process(es) and is resumed by {world}: the data order and "
                      "noise continue differently, so the numbers will not match an uninterrupted run.")
    elif rng.get("rng_device", trainer.rng.device.type) == trainer.rng.device.type:
        trainer.rng.set_state(state.cpu())
        if "data" in rng and getattr(trainer, "data_rng", trainer.rng) is not trainer.rng:
            trainer.data_rng.set_state(rng["data"].cpu())
    else:  # a CUDA generator's state cannot drive a CPU one: continue with a fresh, seeded stream
        trainer.rng.manual_seed(trainer.cfg.seed + rank + ckpt["step"])
        warnings.warn(f"{path} was written on {rng['rng_device']}; continuing on {trainer.rng.device.type} with a "
              "new noise stream (seeded from the step), so the numbers will not match the original device's.")
    if "cuda" in rng and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"].cpu(), trainer.device)
    trainer.batches.load_state_dict(ckpt["batches"])
    trainer.step, trainer.elapsed = ckpt["step"], ckpt.get("elapsed", 0.0)
    trainer.history = {k: list(v) for k, v in ckpt["history"].items()}


def models_from_checkpoint(path_or_ckpt, device="cpu", ema: bool = True):
    """Rebuild ``(net_G, net_D)`` with trained weights from a checkpoint (path or loaded dict).

    With ``ema=True`` (default) the generator gets the EMA weights when the checkpoint has them.
    Both nets are returned in eval mode.
    """
    ckpt = path_or_ckpt if isinstance(path_or_ckpt, dict) else load(path_or_ckpt)
    nets = []
    for key in ("G", "D"):
        net = rebuild(ckpt[key]["class"], ckpt[key]["hparams"])
        state = ckpt[key]["state"]
        if key == "G" and ema and ckpt.get("G_ema"):
            state = ckpt["G_ema"]["state"]
        net.load_state_dict(state)
        nets.append(net.to(config.get_device(device)).eval())
    return tuple(nets)


__all__ = ["FORMAT", "atomic_save", "load", "rng_state", "capture", "restore", "models_from_checkpoint"]
