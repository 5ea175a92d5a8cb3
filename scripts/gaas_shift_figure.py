"""Figure of docs/tutorials/real-material.md: GaAs shift-current spectrum and its T_d symmetry check.

Run from the repository root: ``python scripts/gaas_shift_figure.py [NK]`` (default 12). GaAs's Wannier
centres tie at 1e-4 Å, so the model is loaded from a temporary copy whose .win sets
``ws_distance_tol = 0.01`` (with the default 1e-5 Å the MDRS translations break the cubic symmetry).
Prints, per position-matrix mode, max|σ^{xyz}| and the largest symmetry-forbidden component.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import hamdesign as hd
import numpy as np
from hamdesign.backend import use_backend
from hamdesign.io import load_model
from hamdesign.observables.shift import parse_components, shift_conductivity

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "wannier"
OUT = ROOT / "docs" / "images" / "tutorials" / "gaas-shift.png"
ALLOWED = {(0, 1, 2), (1, 0, 2), (2, 0, 1)}  # xyz, yxz (= yzx), zxy (= zyx): T_d's only components


def load_gaas(folder: Path):
    shutil.copy(DATA / "GaAs_tb.dat.gz", folder / "GaAs_tb.dat.gz")
    (folder / "GaAs.win").write_text((DATA / "GaAs.win").read_text() + "\nws_distance_tol = 0.01\n")
    return load_model(str(folder / "GaAs_tb.dat.gz"))


def main(nk: int = 12) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    omega = np.linspace(0.2, 4.0, 96)
    comps = parse_components("all", dim=3)
    with tempfile.TemporaryDirectory() as tmp, use_backend("numpy"):
        model = load_gaas(Path(tmp))
        kfrac = hd.kmesh(nk, 3)
        e = np.linalg.eigvalsh(np.asarray(hd.hamiltonian(model, None, hd.kmesh(6, 3))))
        mu = 0.5 * (e[:, 7].max() + e[:, 8].min())
        spectra = {}
        for mode in ("diagonal", "full"):
            start = time.perf_counter()
            sigma = np.asarray(
                shift_conductivity(
                    model, None, kfrac, omega, components=comps, beta=50.0, mu=mu, eta=0.1, position_matrix=mode
                ).sigma
            )
            spectra[mode] = sigma * 1e6  # µA/V²
            xyz = np.max(np.abs(sigma[comps.index((0, 1, 2))]))
            forbidden = max(np.max(np.abs(row)) for c, row in zip(comps, sigma, strict=False) if c not in ALLOWED)
            print(
                f"position matrix {mode}: {time.perf_counter() - start:.1f} s; max|σ^xyz| = {xyz * 1e6:.2f} µA/V², "
                f"max forbidden = {forbidden * 1e6:.3g} µA/V² ({forbidden / xyz:.1e} of it)"
            )
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.0))
    for mode, style in (("full", "-"), ("diagonal", "--")):
        s = spectra[mode]
        for comp, color in zip(sorted(ALLOWED), ("C0", "C1", "C2"), strict=False):
            ax.plot(
                omega, s[comps.index(comp)], color=color, linestyle=style, label=f"σ^{''.join('xyz'[i] for i in comp)}, {mode}"
            )
        forbidden = np.max(np.abs([row for c, row in zip(comps, s, strict=False) if c not in ALLOWED]), axis=0)
        bx.semilogy(omega, np.abs(s[comps.index((0, 1, 2))]), color="C0", linestyle=style, label=f"|σ^xyz|, {mode}")
        bx.semilogy(omega, forbidden, color="C3", linestyle=style, label=f"max forbidden, {mode}")
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_xlabel("ħω (eV)")
    ax.set_ylabel("σ (µA/V²)")
    ax.set_title(f"GaAs shift current, {nk}³ k, η = 0.1 eV, sc_eta = 0.04 eV", fontsize=9)
    ax.legend(fontsize=7)
    bx.set_xlabel("ħω (eV)")
    bx.set_ylabel("|σ| (µA/V²)")
    bx.set_title("T_d check: the 15 forbidden components", fontsize=9)
    bx.legend(fontsize=7)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"→ {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
