"""Notebook 03's optional colour section, run here on the CPU. The cell is off by default and meant for a
GPU, so nbval never runs it; this test runs its code on a folder of generated images, with a small random
net standing in for Inception, so an API the cell misuses fails here and not on a learner's Colab."""
import json
import math
import re
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from IPython.display import display  # noqa: E402

import gan_tutorial  # noqa: E402
from gan_tutorial import fid, plotting, recipes  # noqa: E402

from test_fid import small_extractor  # noqa: E402
from test_images import make_folder  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_dcgan.ipynb"


def colour_cell() -> str:
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"]
             if c["cell_type"] == "code" and "RUN_COLOUR =" in "".join(c["source"])]
    assert len(cells) == 1, "notebook 03 should have one cell that sets RUN_COLOUR"
    return cells[0]


def with_setting(source: str, name: str, value) -> str:
    """``source`` with the line ``NAME = ...`` of the cell's settings set to ``value``."""
    new, n = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", source, count=1, flags=re.M)
    assert n == 1, f"the colour cell no longer sets {name}"
    return new


def test_the_colour_section_runs_on_a_folder(tmp_path, monkeypatch, capsys):
    folder = make_folder(tmp_path / "pics", n=130, size=(40, 50))   # the cell trains with batch 128
    source = colour_cell()
    for name, value in (("RUN_COLOUR", True), ("COLOUR_DATASET", str(folder)), ("COLOUR_LIMIT", 130),
                        ("COLOUR_STEPS", 2), ("COLOUR_FID", 20)):
        source = with_setting(source, name, value)
    guard = 'elif device.type != "cuda":'
    assert guard in source
    source = source.replace(guard, "elif False:")      # the GPU check: run it on the CPU here
    monkeypatch.setattr(fid, "default_extractor", lambda device=None, verbose=True: small_extractor())
    namespace = dict(device=torch.device("cpu"), SEED=0, torch=torch, gan_tutorial=gan_tutorial, recipes=recipes,
                     plotting=plotting, plt=plt, display=display)
    exec(compile(source, "notebook 03, colour section", "exec"), namespace)
    plt.close("all")

    trainer = namespace["col_trainer"]
    assert trainer.step == 2
    assert namespace["colour"].images.shape == (130, 3, 64, 64) and namespace["colour"].images.dtype == torch.uint8
    assert trainer.sample(4).shape == (4, 3, 64, 64)
    assert namespace["value"] > 0 and math.isfinite(namespace["value"])
    assert "FID of 20 samples against 20 training images (small random conv net" in capsys.readouterr().out


def test_the_colour_section_is_off_by_default(capsys):
    namespace = dict(device=torch.device("cpu"))
    exec(compile(colour_cell(), "notebook 03, colour section", "exec"), namespace)
    assert "Optional colour section skipped" in capsys.readouterr().out and "col_trainer" not in namespace


@pytest.mark.parametrize("setting", ["RUN_COLOUR", "COLOUR_DATASET", "COLOUR_LIMIT", "COLOUR_STEPS", "COLOUR_FID"])
def test_the_settings_are_on_their_own_lines(setting):
    with_setting(colour_cell(), setting, 1)
