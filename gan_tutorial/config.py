"""Run-time settings: fast/full mode, device choice, seeding, data and cache folders.

Environment variables (all optional):

* ``GAN_TUTORIAL_FAST`` -- ``1`` for fast mode (tiny budgets, used by the tests), ``0`` for full
  mode. When unset, fast mode is on if ``CI`` is set and off otherwise.
* ``GAN_TUTORIAL_CLASSROOM`` -- ``1`` turns classroom mode on in every notebook (``0`` off),
  whatever the notebook's own switch says: the long runs load the shipped checkpoints instead.
* ``GAN_TUTORIAL_DEVICE`` -- ``cuda``, ``cuda:1``, ``mps``, ``cpu`` or ``auto`` (default).
* ``GAN_TUTORIAL_DATA`` -- a folder holding ``mnist/`` (idx files or torchvision's layout).
* ``GAN_TUTORIAL_CACHE`` -- where the package keeps things it makes or downloads for you.

The repository address (``REPO_URL``) and the branch or tag the notebooks install from
(``REPO_REF``) are kept in one place, ``[project.urls]`` of ``pyproject.toml``; change them with
``python3 tutorial.py set-repo URL [--ref TAG]``, which also rewrites the notebooks' Colab badges
and install cells.
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path

import torch


def _project_urls() -> dict[str, str]:
    """``[project.urls]`` of the project: from ``pyproject.toml`` in a source checkout (an editable
    install sees edits at once), else from the installed package's metadata (e.g. a git install)."""
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        if re.search(r'^name\s*=\s*"gan-tutorial"', text, re.M):
            section = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
            lines = section.group(1) if section else ""
            return dict(re.findall(r'^\s*"?([\w.-]+)"?\s*=\s*"([^"]*)"', lines, re.M))
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        entries = metadata("gan-tutorial").get_all("Project-URL") or []
    except PackageNotFoundError:
        return {}
    return dict(tuple(part.strip() for part in entry.split(",", 1)) for entry in entries if "," in entry)


def _repository() -> tuple[str | None, str]:
    urls = _project_urls()
    url = urls.get("Repository")
    notebooks = urls.get("Notebooks", "")
    prefix = f"{url}/tree/"
    ref = notebooks[len(prefix):].rsplit("/notebooks", 1)[0] if url and notebooks.startswith(prefix) else "main"
    return url, ref


REPO_URL, REPO_REF = _repository()  # e.g. "https://github.com/OWNER/NAME", "main" (None if not installed)


def _env_flag(name: str, on: str, off: str) -> bool | None:
    """The yes/no environment variable ``name`` (None when unset); anything else raises with the fix."""
    flag = os.environ.get(name, "").strip().lower()
    if flag in ("1", "true", "yes", "on"):
        return True
    if flag in ("0", "false", "no", "off"):
        return False
    if flag:
        raise ValueError(f"{name}={flag!r} is not understood: set it to 1 ({on}) or 0 ({off}).")
    return None


def fast_mode() -> bool:
    """True when notebooks and scripts should use their small, quick settings."""
    flag = _env_flag("GAN_TUTORIAL_FAST", "fast", "full")
    return bool(os.environ.get("CI")) if flag is None else flag


_classroom = False   # set by classroom(); GAN_TUTORIAL_CLASSROOM overrides it


def classroom(on: bool | None = None) -> bool:
    """Classroom mode: notebooks load the checkpoints shipped with the package (``gan_tutorial.shipped``)
    in place of their long training runs, and :func:`pick` returns the short classroom budgets.

    ``classroom(True)`` / ``classroom(False)`` is a notebook's switch; ``classroom()`` only reports.
    ``GAN_TUTORIAL_CLASSROOM=1`` (or ``0``) overrides the switch, so a teacher can set a whole room.
    """
    global _classroom
    if on is not None:
        _classroom = bool(on)
    return _classroom_on()


def _classroom_on() -> bool:
    env = _env_flag("GAN_TUTORIAL_CLASSROOM", "on", "off")
    return _classroom if env is None else env


def pick(fast, full, classroom=None):
    """``fast`` in fast mode, else ``classroom`` in classroom mode (when given), else ``full``
    (e.g. ``num_steps = pick(200, 6000, classroom=300)``)."""
    if fast_mode():
        return fast
    return classroom if classroom is not None and _classroom_on() else full


def get_device(name: str | torch.device | None = None) -> torch.device:
    """Resolve a device: ``None``/``"auto"`` picks cuda, then mps, then cpu.

    Raises ``ValueError`` for a string torch does not know, and ``RuntimeError`` for a device
    that is not available on this machine, each with the fix in the message.
    """
    if name is None:
        name = os.environ.get("GAN_TUTORIAL_DEVICE", "auto")
    if isinstance(name, torch.device):
        dev = name
    else:
        name = str(name).strip().lower()
        if name == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            mps = getattr(torch.backends, "mps", None)
            if mps is not None and mps.is_available():
                return torch.device("mps")
            return torch.device("cpu")
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError):
            raise ValueError(
                f"Unknown device {name!r}. Use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
            ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"Device {str(dev)!r} was asked for but CUDA is not available here. "
            "Use device='auto' or 'cpu' (on Colab: Runtime > Change runtime type > GPU)."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RuntimeError(f"{dev} does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError("Device 'mps' was asked for but Apple MPS is not available. Use 'auto' or 'cpu'.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Device type {dev.type!r} is not supported here. Use 'auto', 'cpu', 'cuda' or 'mps'.")
    return dev


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy (if present) and torch; return a CPU ``torch.Generator`` with that seed."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a torch dependency in practice
        pass
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def data_root() -> Path:
    """Folder that holds datasets (``$GAN_TUTORIAL_DATA``, else ``<cache>/data``)."""
    env = os.environ.get("GAN_TUTORIAL_DATA")
    return Path(env).expanduser() if env else cache_dir() / "data"


def cache_dir() -> Path:
    """Folder for things the package makes itself (``$GAN_TUTORIAL_CACHE``, else ~/.cache/gan_tutorial)."""
    env = os.environ.get("GAN_TUTORIAL_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gan_tutorial"


def in_colab() -> bool:
    """True inside Google Colab."""
    try:
        import google.colab  # noqa: F401

        return True
    except ImportError:
        return False


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), for benchmarks to record their hardware."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def describe(device: torch.device | None = None) -> str:
    """One line for a notebook's setup cell: mode, device and a hint when no GPU is in use."""
    device = device or get_device()
    mode = "fast" if fast_mode() else "full"
    line = f"gan_tutorial: {mode} mode{' + classroom mode' if classroom() else ''} on {device}"
    if device.type == "cuda":
        line += f" ({torch.cuda.get_device_name(device)})"
    else:
        line += " -- no GPU: everything runs, just slower (on Colab pick a GPU runtime)"
    if mode == "fast":
        line += "\n  fast mode: tiny training budgets, so figures are rough. Set GAN_TUTORIAL_FAST=0 for full runs."
    if classroom():
        line += ("\n  classroom mode: the long runs load the checkpoints shipped with the package; short live runs "
                 "show the curves moving.")
    return line
