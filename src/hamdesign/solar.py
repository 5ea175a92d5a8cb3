"""Solar spectra as spectral irradiance per unit angular frequency, I(ω) in W m⁻² per (rad/s).

Two families:

* ``blackbody5500``: Planck's law at 5500 K, I(ω) ∝ ω³ / (e^{ħω/k_BT} − 1), scaled so that
  ∫ I(ω) dω = 1366 W/m² (the spectrum of the original work).
* ``am0``, ``am15g``, ``am15d``: the ASTM G173-03 reference spectra (extraterrestrial, global tilt,
  direct + circumsolar) from pvlib's bundled data (imported lazily; ``pip install pvlib``). The
  tables are W m⁻² nm⁻¹ on a wavelength grid; converted to SI per metre, then per angular
  frequency with the Jacobian I(ω) = I(λ) |dλ/dω| = I(λ) λ² / (2πc). Totals: ≈ 1348, 1000 and
  900 W/m².

Every spectrum is returned on its own angular-frequency grid (ascending) so that integrals keep the
table's resolution; :func:`irradiance_at` interpolates it at arbitrary photon energies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .units import BOLTZMANN, ELEMENTARY_CHARGE, HBAR, SPEED_OF_LIGHT, VACUUM_PERMITTIVITY

SPECTRA = ("blackbody5500", "am0", "am15g", "am15d")
_ASTM_COLUMNS = {"am0": "extraterrestrial", "am15g": "global", "am15d": "direct"}
SOLAR_CONSTANT = 1366.0  # W/m², the original work's normalisation


@dataclass(frozen=True)
class Spectrum:
    """Spectral irradiance I(ω) (W m⁻² s rad⁻¹) on an ascending angular-frequency grid ω (rad/s)."""

    name: str
    omega: np.ndarray
    irradiance: np.ndarray
    description: str

    @property
    def energy_ev(self) -> np.ndarray:
        """Photon energies ħω in eV."""
        return self.omega * HBAR / ELEMENTARY_CHARGE

    def total(self) -> float:
        """∫ I(ω) dω in W/m² (trapezoid rule on the native grid)."""
        return float(np.trapezoid(self.irradiance, self.omega))

    def per_ev(self) -> tuple[np.ndarray, np.ndarray]:
        """(ħω in eV, irradiance per eV in W m⁻² eV⁻¹)."""
        return self.energy_ev, self.irradiance * ELEMENTARY_CHARGE / HBAR


def blackbody(temperature_k: float = 5500.0, total: float = SOLAR_CONSTANT, *, npoints: int = 4000) -> Spectrum:
    """Planck spectrum per angular frequency, scaled to ``total`` W/m²."""
    if not temperature_k > 0 or not total > 0:
        raise ParameterError("black-body temperature and total irradiance must be positive")
    kt = BOLTZMANN * temperature_k
    omega = np.linspace(1e-4, 40.0, npoints) * kt / HBAR  # up to ħω = 40 k_BT, beyond which e^{-40} is nothing
    x = HBAR * omega / kt
    shape = x**3 / np.expm1(x)
    irradiance = shape * total / np.trapezoid(shape, omega)
    return Spectrum(
        f"blackbody{temperature_k:g}", omega, irradiance, f"black body at {temperature_k:g} K scaled to {total:g} W/m^2"
    )


def astm_g173(which: str) -> Spectrum:
    """ASTM G173-03 ``am0`` / ``am15g`` / ``am15d`` per angular frequency (pvlib's data)."""
    try:
        from pvlib.spectrum import get_reference_spectra
    except ImportError as err:  # pragma: no cover - exercised where pvlib is missing
        raise ParameterError("the ASTM G173 spectra need pvlib: pip install pvlib") from err
    table = get_reference_spectra(standard="ASTM G173-03")
    wavelength_m = table.index.to_numpy(dtype=float) * 1e-9
    per_m = table[_ASTM_COLUMNS[which]].to_numpy(dtype=float) * 1e9  # W m⁻² nm⁻¹ → W m⁻² m⁻¹
    omega = 2 * np.pi * SPEED_OF_LIGHT / wavelength_m
    irradiance = per_m * wavelength_m**2 / (2 * np.pi * SPEED_OF_LIGHT)  # |dλ/dω| = λ²/(2πc)
    order = np.argsort(omega)
    names = {
        "am0": "ASTM G173-03 AM0 (extraterrestrial)",
        "am15g": "ASTM G173-03 AM1.5 global tilt",
        "am15d": "ASTM G173-03 AM1.5 direct + circumsolar",
    }
    return Spectrum(which, omega[order], irradiance[order], names[which])


def get_spectrum(name: str) -> Spectrum:
    """A spectrum by name: blackbody5500, am0, am15g or am15d (also blackbody<T> for any T in K)."""
    key = name.strip().lower().replace(".", "").replace("-", "")
    if key in _ASTM_COLUMNS:
        return astm_g173(key)
    if key.startswith("blackbody"):
        try:
            temperature = float(key[len("blackbody") :] or 5500.0)
        except ValueError as err:
            raise ParameterError(f"unknown spectrum {name!r}; choose one of {', '.join(SPECTRA)}") from err
        return blackbody(temperature)
    raise ParameterError(f"unknown spectrum {name!r}; choose one of {', '.join(SPECTRA)}")


def irradiance_at(spectrum: Spectrum, energy_ev):
    """I(ω) (W m⁻² per rad/s) at photon energies ħω in eV, linearly interpolated, 0 outside the table."""
    return np.interp(np.asarray(energy_ev, dtype=float), spectrum.energy_ev, spectrum.irradiance, left=0.0, right=0.0)


def field_factor_per_irradiance() -> float:
    """1/(c ε0) in V² W⁻¹: E0² = 2 I/(c ε0) for a plane wave, so |E(ω)|² = E0²/4 = I/(2 c ε0)."""
    return 1.0 / (SPEED_OF_LIGHT * VACUUM_PERMITTIVITY)
