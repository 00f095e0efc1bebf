"""ipywidgets explorers. Each builder returns a widget and never blocks: safe in headless runs.

Works with ipywidgets 7 (Colab) and 8. Drawing goes through an ``Output`` widget.
"""
from __future__ import annotations

import matplotlib.pyplot as plt


def _widgets():
    try:
        import ipywidgets
    except ImportError as e:  # pragma: no cover
        raise ImportError("ipywidgets is needed for the explorers: pip install ipywidgets") from e
    return ipywidgets


def snapshot_scrubber(snapshots, draw, description: str = "step"):
    """A slider over training snapshots; ``draw(snapshot, ax)`` paints one of them.

    Returns a ``VBox(slider, output)``; the first snapshot is drawn immediately.
    """
    w = _widgets()
    if not snapshots:
        raise ValueError("no snapshots: train with snapshot_every > 0")
    slider = w.IntSlider(value=len(snapshots) - 1, min=0, max=len(snapshots) - 1, description=description,
                         continuous_update=False)
    label = w.Label()
    out = w.Output()

    def render(change=None):
        snap = snapshots[slider.value]
        label.value = f"generator step {snap['step']}"
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(6, 3.5))
            draw(snap, ax)
            plt.show()

    slider.observe(render, names="value")
    render()
    return w.VBox([w.HBox([slider, label]), out])
