"""Figures of docs/tutorials/real-material.md: bcc Fe's anomalous Hall conductivity σ(μ) in S/cm.

Run from the repository root: ``python scripts/real_material_figures.py [NK]`` (default 16; about a
minute per curve on one core). Each curve is one pass over the k-mesh for 401 Fermi levels.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import hamdesign as hd
import numpy as np
from hamdesign.backend import use_backend
from hamdesign.io import load_model
from hamdesign.observables.hall import anomalous_hall_conductivity

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "wannier"
OUT = ROOT / "docs" / "images" / "tutorials" / "fe-ahc-scan.png"


def main(nk: int = 16) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mus = np.linspace(16.5, 19.5, 401)
    kfrac = hd.kmesh(nk, 3)
    curves = {}
    with use_backend("numpy"):
        for ws in (True, False):
            model = load_model(str(DATA / "Fe_tb.dat.gz"), ws_distance=ws)
            for mode in ("diagonal", "full") if ws else ("diagonal",):
                start = time.perf_counter()
                curves[(ws, mode)] = np.asarray(
                    anomalous_hall_conductivity(model, None, kfrac, beta=1 / 0.02, mu=mus, position_matrix=mode)
                )
                print(
                    f"MDRS {'on' if ws else 'off'}, position matrix {mode}: {time.perf_counter() - start:.1f} s, "
                    f"σ_xy(18.0 eV) = {np.interp(18.0, mus, curves[(ws, mode)][:, 2]):.1f} S/cm"
                )
    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles = {
        (True, "full"): ("C0", "-", "MDRS, full position matrix"),
        (True, "diagonal"): ("C1", "--", "MDRS, diagonal (TB)"),
        (False, "diagonal"): ("C2", ":", "no MDRS, diagonal"),
    }
    for key, (color, line, label) in styles.items():
        ax.plot(mus, curves[key][:, 2], color=color, linestyle=line, label=label)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.axvline(18.0, color="0.6", linewidth=0.8, linestyle="-.")
    ax.set_xlabel("μ (eV)")
    ax.set_ylabel("σ_xy (S/cm)")
    ax.set_title(f"bcc Fe (18 Wannier functions, SOC): σ_xy(μ), {nk}³ k, k_BT = 20 meV", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"→ {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 16)
