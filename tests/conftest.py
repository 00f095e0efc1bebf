"""Test settings: fast mode, offline data from ../shared/data when present, a non-interactive backend.

These are set at import time so the notebook kernels that nbval starts inherit them too.
"""
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

os.environ.setdefault("GAN_TUTORIAL_FAST", "1")
_shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "GAN_TUTORIAL_DATA" not in os.environ and (_shared / "mnist").is_dir():
    os.environ["GAN_TUTORIAL_DATA"] = str(_shared)
