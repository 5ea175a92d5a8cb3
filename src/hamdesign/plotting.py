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
        ("sigma", "σ (S/cm) at the training T"),
        ("perturbation_norm", "‖ΔH‖ (energy unit)"),
        ("mu", "μ (energy unit)"),
    ]
    panels = [(k, label) for k, label in panels if k in history]
    fig, axes = plt.subplots(len(panels) + 1, 1, figsize=(7, 2.2 * (len(panels) + 1)), sharex=True)
    for ax, (key, label) in zip(axes, panels, strict=False):
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


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    path = Path(path)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_bands(model, params, path: Path, *, title: str, mu: float | None = None) -> Path:
    """Bands along a high-symmetry path; for 2D/3D models each point is coloured by Ω_n(k) and the
    legend gives the band Chern numbers (Kubo, 60×60 mesh, 2D)."""
    from matplotlib.colors import SymLogNorm

    from .backend import use_backend
    from .lattice import high_symmetry_path
    from .observables.hall import berry_curvature, chern_numbers_lattice
    from .spectrum import bands

    plt = _pyplot()
    kfrac, dist, ticks = high_symmetry_path(model.lattice)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    with use_backend("numpy"):
        if model.dim >= 2:
            energies, omega = (np.asarray(x) for x in berry_curvature(model, params, kfrac))
            limit = max(float(np.abs(omega).max()), 1e-6)
            norm = SymLogNorm(linthresh=limit * 1e-3, vmin=-limit, vmax=limit)
            chern = chern_numbers_lattice(model, params, 48) if model.dim == 2 else None
            for n in range(model.nband):
                label = f"band {n + 1}" + (f": C = {int(round(chern[n])):+d}" if chern is not None else "")
                ax.plot(dist, energies[:, n], color="0.75", lw=0.8, zorder=1)
                sc = ax.scatter(dist, energies[:, n], c=omega[:, n], cmap="coolwarm", norm=norm, s=6, zorder=2, label=label)
            fig.colorbar(sc, ax=ax, label=f"Berry curvature Ω_n ({model.length_unit}²)")
            ax.legend(fontsize=7, loc="best")
        else:
            energies = np.asarray(bands(model, params, kfrac))
            ax.plot(dist, energies, color="tab:blue", lw=1)
    if mu is not None:
        ax.axhline(mu, color="k", ls="--", lw=0.8, label="μ")
    ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks])
    for t in ticks:
        ax.axvline(t[0], color="0.85", lw=0.6, zorder=0)
    ax.set_xlim(dist[0], dist[-1])
    ax.set_ylabel(f"energy ({model.energy_unit})")
    ax.set_xlabel("wave vector along the high-symmetry path")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_berry_map(
    model, params, path: Path, *, title: str, beta: float, mu: float | None = None, filling: float | None = None, nk: int = 90
) -> Path:
    """Occupied Berry curvature Σ_n f(ε_n − μ) Ω_n(k) over one reciprocal cell (Cartesian k)."""
    from .backend import use_backend
    from .lattice import kmesh
    from .observables.hall import curvature_on_mesh
    from .spectrum import fermi, resolve_mu

    plt = _pyplot()
    kfrac = kmesh(nk, 2)
    with use_backend("numpy"):
        energies, omega = curvature_on_mesh(model, params, kfrac)
        mu_value = resolve_mu(energies, beta=beta, mu=mu, filling=filling)
        occupied = np.sum(np.asarray(fermi(energies - mu_value, beta)) * np.asarray(omega), axis=1)
    kc = model.lattice.cartesian_k(kfrac)
    fig, ax = plt.subplots(figsize=(6, 5))
    limit = max(float(np.abs(occupied).max()), 1e-12)
    tpc = ax.tripcolor(kc[:, 0], kc[:, 1], occupied, cmap="coolwarm", vmin=-limit, vmax=limit, shading="gouraud")
    fig.colorbar(tpc, ax=ax, label=f"Σ_n f_n Ω_n ({model.length_unit}²)")
    ax.set_aspect("equal")
    ax.set_xlabel(f"k_x (1/{model.length_unit})")
    ax.set_ylabel(f"k_y (1/{model.length_unit})")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_photocurrent_spectrum(
    model,
    params,
    path: Path,
    *,
    title: str,
    beta: float,
    filling: float | None,
    mu: float | None,
    tau: float,
    spectrum: str,
    direction: str = "x",
    eta: float = 0.02,
) -> Path:
    """σ_shift(ω) and τη(ω) (A/V²), the solar spectrum, and the spectral current density dJ/d(ħω)."""
    from .backend import use_backend
    from .lattice import kmesh
    from .observables.injection import injection_rate
    from .observables.shift import shift_conductivity
    from .solar import get_spectrum, irradiance_at
    from .units import ELEMENTARY_CHARGE, HBAR, SPEED_OF_LIGHT, VACUUM_PERMITTIVITY

    plt = _pyplot()
    axis = "xyz".index(direction)
    comp = [(axis, axis, axis)]
    omega = np.linspace(0.01, 3.0, 300)
    kfrac = kmesh(128 if model.dim == 1 else 48, model.dim)
    settings = {"beta": beta, "filling": filling, "mu": mu, "eta": eta}
    with use_backend("numpy"):
        shift = np.asarray(shift_conductivity(model, params, kfrac, omega, components=comp, **settings).sigma)[0]
        inj = tau * np.asarray(injection_rate(model, params, kfrac, omega, components=comp, **settings).rate)[0]
    spec = get_spectrum(spectrum)
    sun = irradiance_at(spec, omega)
    spectral_j = (shift + inj) * sun / (SPEED_OF_LIGHT * VACUUM_PERMITTIVITY) * ELEMENTARY_CHARGE / HBAR  # A m⁻² eV⁻¹
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    ax1.plot(omega, shift, label="σ_shift")
    ax1.plot(omega, inj, label=f"τη (τ = {tau:g} s)")
    ax1.plot(omega, shift + inj, "k", lw=1, label="total")
    ax1.set_ylabel(f"σ^{direction * 3}, τη^{direction * 3} (A/V², bulk)")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    twin = ax1.twinx()
    twin.fill_between(omega, sun * ELEMENTARY_CHARGE / HBAR, color="gold", alpha=0.25)
    twin.set_ylabel(f"{spec.name} irradiance (W m⁻² eV⁻¹)")
    ax2.plot(omega, spectral_j, color="tab:green")
    ax2.set_ylabel("dJ/d(ħω) (A m⁻² eV⁻¹)")
    ax2.set_xlabel("photon energy ħω (eV)")
    ax2.grid(alpha=0.3)
    ax1.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_spin_texture(spins: np.ndarray, path: Path, *, title: str) -> Path:
    """Classical spins along the chain: 3D arrows at their sites, and their components per site."""
    plt = _pyplot()
    spins = np.asarray(spins)
    n = len(spins)
    fig = plt.figure(figsize=(9, 4))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    x = np.arange(n, dtype=float)
    ax.quiver(x, np.zeros(n), np.zeros(n), spins[:, 0], spins[:, 1], spins[:, 2], length=0.8, normalize=True, color="tab:red")
    ax.plot(x, np.zeros(n), np.zeros(n), "ko", ms=3)
    ax.set_xlim(-1, n)
    ax.set_ylim(-1, 1)
    ax.set_zlim(-1, 1)
    ax.set_xlabel("site")
    ax.set_title("spins along the chain", fontsize=9)
    ax2 = fig.add_subplot(1, 2, 2)
    for c, label in enumerate("xyz"):
        ax2.plot(x, spins[:, c], "o-", label=f"S_{label}")
    ax2.set_xlabel("site")
    ax2.set_ylabel("spin component")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_ensemble(summary: dict, path: Path, *, title: str) -> Path:
    """An ensemble's objective: histogram over all finished runs, and value against seed per sweep point."""
    plt = _pyplot()
    done = [r for r in summary["runs"] if r.get("status") == "ok"]
    quantity = summary.get("quantity", "value")
    fig, (hist, scatter) = plt.subplots(1, 2, figsize=(10, 3.6))
    dist = summary["distribution"]["histogram"]
    edges = np.asarray(dist["edges"])
    hist.bar(edges[:-1], dist["counts"], width=np.diff(edges), align="edge", color="tab:blue", alpha=0.8)
    hist.set_xlabel(quantity)
    hist.set_ylabel("runs")
    for entry in summary["points"]:
        mine = [r for r in done if r["point"] == entry["point"]]
        label = ", ".join(f"{k}={v}" for k, v in entry["point"].items()) or None
        scatter.plot([r["seed"] for r in mine], [r["value"] for r in mine], "o", ms=4, label=label)
    failed = [r for r in summary["runs"] if r.get("status") == "error"]
    if failed:
        scatter.plot([r["seed"] for r in failed], [0.0] * len(failed), "x", color="tab:red", label="failed")
    scatter.set_xlabel("seed")
    scatter.set_ylabel(quantity)
    if any(entry["point"] for entry in summary["points"]) or failed:
        scatter.legend(fontsize=7)
    for ax in (hist, scatter):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_ahc_design(result: dict, path: Path, *, title: str) -> Path:
    """Left: σ(μ) of the starting and the designed model (μ of each marked); right: each perturbation's
    final value as a fraction of its range (−1 … 1 from the DFT value to the lower/upper bound)."""
    plt = _pyplot()
    ev = result["evaluation"]
    scan = ev["scan"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    for key, colour, label in (("initial", "tab:gray", "DFT model"), ("final", "tab:red", "designed")):
        left.plot(scan["mu"], scan[key], color=colour, lw=1.4, label=label)
        left.axvline(ev[key]["mu"], color=colour, ls=":", lw=1)
        left.plot([ev[key]["mu"]], [ev[key]["sigma"]], "o", color=colour)
    unit = ev.get("units", {}).get("mu", "eV")
    left.set_xlabel(f"μ ({unit})")
    left.set_ylabel(f"{ev['component'].replace('sigma_', 'σ_')} (S/cm)")
    left.set_title(f"k_BT = {1 / ev['beta']:.3g} {unit}, {'×'.join(map(str, ev['nk']))} k", fontsize=9)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    bounds = result.get("parametrization", {})
    names, fractions = [], []
    for name, value in result["parameters"].items():
        spec = bounds.get(name, {})
        low, high = spec.get("low"), spec.get("high")
        if low is None or high is None:
            continue
        start = 1.0 if name == "exchange" else 0.0
        names.append(name)
        fractions.append((value - start) / (high - start) if value >= start else (value - start) / (start - low))
    right.barh(names, fractions, color=["tab:red" if f > 0 else "tab:blue" for f in fractions])
    right.set_xlim(-1.05, 1.05)
    right.axvline(0, color="black", lw=0.8)
    right.set_xlabel("final value, fraction of the allowed range")
    for n, value in enumerate(result["parameters"][k] for k in names):
        right.annotate(f"{value:+.3g}", (0.0, n), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    right.grid(alpha=0.3, axis="x")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)
