"""The committed notebooks: all six present, in order, executed top to bottom, small, and portable.

nbval executes them (they are collected from notebooks/); these checks cover what a reader sees on
GitHub or Colab before running anything.
"""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SERIES = ["01_minimax_and_1d_toy", "02_mlp_gan_mnist", "03_dcgan", "04_conditional_gan", "05_wgan_gp",
          "06_style_loss"]
# the notebooks delivered executed and verified so far (the rest of SERIES is still being written)
EXPECTED = ["01_minimax_and_1d_toy", "02_mlp_gan_mnist", "03_dcgan", "04_conditional_gan", "05_wgan_gp", "06_style_loss"]


def test_notebooks_belong_to_the_series():
    present = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert set(present) <= set(SERIES) and set(EXPECTED) <= set(present)


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_readable_before_running(name):
    path = NOTEBOOKS / f"{name}.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    first = "".join(cells[0]["source"])
    assert f"colab.research.google.com/github/gan-tutorial/gan-tutorial/blob/main/notebooks/{name}.ipynb" in first
    code = [c for c in cells if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    assert all(isinstance(n, int) for n in counts), "commit the notebook executed (every code cell run)"
    assert counts == sorted(counts), "cells were run out of order: restart and run all"
    outputs = json.dumps([c.get("outputs", []) for c in code])
    assert not re.search(r"/(work|tmp|root|home)/", outputs), "outputs show a path of the machine that ran them"
    assert '"ename"' not in outputs, "an error is saved in the outputs"
    assert any(re.search(r'"image/(png|jpeg)"', json.dumps(c.get("outputs", []))) for c in code), "no figure in the outputs"
    assert path.stat().st_size < 3 * 1024 * 1024, "keep notebooks under 3 MB"
    setup = "".join(code[0]["source"]) + "".join(code[1]["source"]) if len(code) > 1 else ""
    assert "google.colab" in setup and "describe(" in setup, "the setup cell detects Colab and prints the mode"
