"""Physical constants (CODATA 2018, SI) and the unit conversions hamdesign reports in.

Internally ħ = e = 1; energies carry the model's energy unit (eV by default) and lengths its
length unit (Å by default). Every factor that turns an internal number into SI is defined here.
"""

from __future__ import annotations

ELEMENTARY_CHARGE = 1.602176634e-19  # C (exact)
PLANCK = 6.62607015e-34  # J s (exact)
HBAR = PLANCK / (2 * 3.141592653589793)  # J s
BOLTZMANN = 1.380649e-23  # J/K (exact)
SPEED_OF_LIGHT = 299792458.0  # m/s (exact)
VACUUM_PERMITTIVITY = 8.8541878128e-12  # F/m
ANGSTROM = 1e-10  # m

#: Conductance quantum e²/h in siemens.
E2_OVER_H = ELEMENTARY_CHARGE**2 / PLANCK
#: Boltzmann constant in eV/K.
KB_EV = BOLTZMANN / ELEMENTARY_CHARGE

#: Metres per length unit and joules per energy unit understood in model files.
LENGTH_UNITS = {"Å": ANGSTROM, "angstrom": ANGSTROM, "ang": ANGSTROM, "nm": 1e-9, "bohr": 0.529177210903e-10, "m": 1.0}
ENERGY_UNITS = {"eV": ELEMENTARY_CHARGE, "meV": 1e-3 * ELEMENTARY_CHARGE, "Ry": 13.605693122994 * ELEMENTARY_CHARGE}


def length_in_m(unit: str) -> float | None:
    """Metres per ``unit``; ``None`` for a dimensionless model unit (e.g. lattice constants)."""
    return LENGTH_UNITS.get(unit)


def energy_in_j(unit: str) -> float | None:
    """Joules per ``unit``; ``None`` for a dimensionless model unit (e.g. t1 = 1)."""
    return ENERGY_UNITS.get(unit)


def kelvin_to_energy(temperature_k: float, unit: str = "eV") -> float:
    """k_B T in the given energy unit."""
    joules = energy_in_j(unit)
    if joules is None:
        raise ValueError(f"cannot convert kelvin to the dimensionless energy unit {unit!r}")
    return BOLTZMANN * temperature_k / joules


def sheet_to_bulk_s_per_cm(sigma_e2h: float, thickness: float, length_unit: str) -> float | None:
    """σ (e²/h per layer) divided by a layer thickness, in S/cm (``None`` if lengths are dimensionless)."""
    metres = length_in_m(length_unit)
    if metres is None:
        return None
    return sigma_e2h * E2_OVER_H / (thickness * metres * 100.0)
