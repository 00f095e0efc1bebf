"""Test settings: fast mode, offline data from ../shared/data when present, a non-interactive backend.

These are set at import time so the notebook kernels that nbval starts inherit them too.
"""
import os
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

os.environ.setdefault("GAN_TUTORIAL_FAST", "1")
_shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "GAN_TUTORIAL_DATA" not in os.environ and (_shared / "mnist").is_dir():
    os.environ["GAN_TUTORIAL_DATA"] = str(_shared)


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST test split (skips the test where it is not on disk)."""
    from gan_tutorial import data

    try:
        return data.load_mnist(verbose=False)
    except data.DataNotFoundError:
        pytest.skip("real MNIST not available (set GAN_TUTORIAL_DATA)")


@pytest.fixture(scope="session")
def trained_classifier(mnist):
    """The metric classifier the package ships (its weights' sha256 is checked on loading)."""
    from gan_tutorial import classifier

    return classifier.get_classifier(device="cpu", verbose=False)


@pytest.fixture
def one_thread():
    """One torch thread for the test: the 2-D nets are tiny, so it is as fast and does not fight other jobs."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
