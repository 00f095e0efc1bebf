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


def latent_directions(latent_dim: int, num_directions: int = 4, seed: int = 0):
    """``num_directions`` random orthonormal directions in latent space, shape ``(num_directions, latent_dim)``."""
    import torch

    if not 1 <= num_directions <= latent_dim:
        raise ValueError(f"num_directions must be between 1 and latent_dim={latent_dim}, got {num_directions}")
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(latent_dim, num_directions, generator=g))
    return q.T.contiguous()


def latent_explorer(net_G, num_directions: int = 4, num_samples: int = 8, span: float = 3.0, seed: int = 0,
                    directions=None, nrow: int | None = None):
    """Sliders that move ``num_samples`` latent codes along a few directions; the images follow.

    Every code is moved by the same amount ``sum_i a_i d_i`` along orthonormal directions ``d_i``
    (random unless ``directions`` is given as a ``(K, latent_dim)`` tensor), so you can see whether
    one direction changes the same property (thickness, slant, digit) in every sample. Returns a
    ``VBox`` that is drawn at once and never waits for input; ``box.sliders`` holds the sliders and
    ``box.images()`` the images currently shown.
    """
    import torch

    w = _widgets()
    from .models import generate
    from .plotting import show_grid

    if directions is None:
        directions = latent_directions(net_G.latent_dim, num_directions, seed)
    directions = torch.as_tensor(directions, dtype=torch.float32)
    if directions.dim() != 2 or directions.shape[1] != net_G.latent_dim:
        raise ValueError(f"directions must have shape (K, {net_G.latent_dim}), got {tuple(directions.shape)}")
    base = torch.randn(num_samples, net_G.latent_dim, generator=torch.Generator().manual_seed(seed + 1))
    sliders = [w.FloatSlider(value=0.0, min=-span, max=span, step=span / 20, description=f"direction {i}",
                             continuous_update=False) for i in range(directions.shape[0])]
    reset = w.Button(description="reset")
    out = w.Output()

    def images():
        shift = sum(s.value * d for s, d in zip(sliders, directions))
        return generate(net_G, noise=base + shift)

    def render(change=None):
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(min(1.0 * num_samples, 10), 1.6))
            show_grid(images(), nrow=nrow or num_samples, ax=ax)
            plt.show()

    def on_reset(_):
        for s in sliders:
            s.unobserve(render, names="value")
            s.value = 0.0
            s.observe(render, names="value")
        render()

    for s in sliders:
        s.observe(render, names="value")
    reset.on_click(on_reset)
    render()
    rows = [w.HBox(sliders[i:i + 2]) for i in range(0, len(sliders), 2)]
    box = w.VBox([*rows, reset, out])
    box.sliders, box.images = sliders, images
    return box


def digit_explorer(net_G, num_samples: int = 8, num_positions: int = 24, seed: int = 0, class_names=None):
    """Pick the class (digit) with buttons and move the noise with a slider; a conditional generator draws.

    The ``num_samples`` images share the chosen label; the slider walks each image's noise along
    a great-circle (slerp) path from one random code to another, so you see the style change
    while the digit stays. "new noise" draws new end points. Returns a ``VBox`` that is drawn at
    once and never waits for input; ``box.digit``, ``box.slider`` are the controls and
    ``box.images()`` gives the images currently shown.
    """
    import torch

    w = _widgets()
    from .models import generate
    from .plotting import interpolate_latents, show_grid

    num_classes = getattr(net_G, "num_classes", 0)
    if not num_classes:
        raise ValueError(f"{type(net_G).__name__} is unconditional (num_classes=0); digit_explorer needs a "
                         "conditional generator (build it with num_classes=10).")
    names = [str(c) for c in range(num_classes)] if class_names is None else [str(n) for n in class_names]
    if len(names) != num_classes:
        raise ValueError(f"got {len(names)} class names for {num_classes} classes")
    state = {"seed": seed}

    def new_paths():
        g = torch.Generator().manual_seed(state["seed"])
        ends = torch.randn(num_samples, 2, net_G.latent_dim, generator=g)
        # (num_positions, num_samples, latent_dim): position i of every sample's path
        state["paths"] = torch.stack([interpolate_latents(a, b, num_positions) for a, b in ends], dim=1)

    digit = w.ToggleButtons(options=[(n, c) for c, n in enumerate(names)], value=0, description="digit",
                            style={"button_width": "34px"})
    slider = w.IntSlider(value=0, min=0, max=num_positions - 1, description="noise", continuous_update=False)
    again = w.Button(description="new noise")
    out = w.Output()

    def images():
        labels = torch.full((num_samples,), digit.value, dtype=torch.long)
        return generate(net_G, noise=state["paths"][slider.value], labels=labels)

    def render(change=None):
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(min(0.9 * num_samples, 10), 1.5))
            show_grid(images(), nrow=num_samples, ax=ax, title=f"label {names[digit.value]}, noise position {slider.value}")
            plt.show()

    def on_again(_):
        state["seed"] += 1
        new_paths()
        render()

    new_paths()
    digit.observe(render, names="value")
    slider.observe(render, names="value")
    again.on_click(on_again)
    render()
    box = w.VBox([digit, w.HBox([slider, again]), out])
    box.digit, box.slider, box.images = digit, slider, images
    return box


def precomputed_explorer(results: dict, options: dict, draw, run=None, run_label: str = "run this setting"):
    """Pick among results computed in advance: one selection slider per option, nothing is computed.

    Args:
        results: ``{(value_1, value_2, ...): result}``, keys ordered like ``options``.
        options: ``{name: [values...]}``; one ``SelectionSlider`` each.
        draw: ``draw(result, ax, key)`` paints one result (``result`` is ``None`` if not computed).
        run: optional ``run(key) -> result``; adds a button that computes the current setting when
            clicked (and only then), stores it in ``results`` and redraws.

    Returns a ``VBox`` drawn at once; ``box.selectors`` holds the sliders and ``box.key()`` the
    current setting. Safe in headless runs: it never waits for input.
    """
    w = _widgets()
    names = list(options)
    selectors = [w.SelectionSlider(options=list(options[n]), value=list(options[n])[0], description=n,
                                   continuous_update=False) for n in names]
    out, status = w.Output(), w.Label()

    def key():
        return tuple(s.value for s in selectors)

    def render(change=None):
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(3.5, 3.5))
            draw(results.get(key()), ax, key())
            plt.show()

    for s in selectors:
        s.observe(render, names="value")
    rows = list(selectors)
    if run is not None:
        button = w.Button(description=run_label)

        def on_click(_):
            status.value = "running..."
            results[key()] = run(key())
            status.value = "done"
            render()

        button.on_click(on_click)
        rows.append(w.HBox([button, status]))
    render()
    box = w.VBox([*rows, out])
    box.selectors, box.key = selectors, key
    return box
