"""Matplotlib figures (PNG): design history. Imported lazily; needs ``hamdesign[plot]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: dict, path: Path, *, title: str) -> Path:
    """Objective, temperature, gap and band Chern numbers (or σ) against the design step."""
    plt = _pyplot()
    steps = np.arange(len(history["loss"]))
    panels = [
        ("loss", "loss (minimised)"),
        ("sigma_xy", "σ_xy (e²/h) at the training T"),
        ("gap", "gap at filling (energy unit)"),
        ("chern", "Kubo band Chern numbers"),
        ("j_total", "J total (A/m²)"),
        ("j_shift", "J shift (A/m²)"),
        ("j_injection", "J injection (A/m²)"),
    ]
    panels = [(k, label) for k, label in panels if k in history]
    fig, axes = plt.subplots(len(panels) + 1, 1, figsize=(7, 2.2 * (len(panels) + 1)), sharex=True)
    for ax, (key, label) in zip(axes, panels):
        values = np.asarray(history[key])
        ax.plot(steps, values if values.ndim == 1 else values, lw=1.2)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    temperature = 1.0 / np.asarray(history["beta"])
    axes[-1].semilogy(steps, temperature, color="tab:red", lw=1.2)
    axes[-1].set_ylabel("k_BT (energy unit)", fontsize=8)
    axes[-1].set_xlabel("design step")
    axes[-1].grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
