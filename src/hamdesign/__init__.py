"""hamdesign: inverse design of tight-binding Hamiltonians by automatic differentiation.

The physics is written once against the Python array API; the backend (jax, torch, autograd or
numpy) comes from ``HAMDESIGN_BACKEND`` or :func:`use_backend`. Importing this package imports no
array framework beyond NumPy.
"""

from __future__ import annotations

from .backend import available_backends, current, set_backend, use_backend
from .devices import on_devices
from .errors import BackendError, HamdesignError, LatticeError, MemoryBudgetError, ModelError, ModelFileError, ParameterError
from .lattice import Lattice, high_symmetry_path, kmesh
from .model import TightBinding, hamiltonian, hamiltonian_derivatives, hopping_amplitudes
from .observables import (
    anomalous_hall_conductivity,
    berry_curvature,
    chern_numbers,
    chern_numbers_lattice,
    hall_report,
    injection_rate,
    photocurrent,
    shift_conductivity,
    sigma_xy,
)
from .spectrum import bands, chemical_potential, eigensystem, fermi

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "HamdesignError",
    "Lattice",
    "LatticeError",
    "MemoryBudgetError",
    "ModelError",
    "ModelFileError",
    "ParameterError",
    "TightBinding",
    "anomalous_hall_conductivity",
    "available_backends",
    "bands",
    "berry_curvature",
    "chemical_potential",
    "chern_numbers",
    "chern_numbers_lattice",
    "current",
    "eigensystem",
    "fermi",
    "hall_report",
    "hamiltonian",
    "hamiltonian_derivatives",
    "high_symmetry_path",
    "hopping_amplitudes",
    "injection_rate",
    "photocurrent",
    "shift_conductivity",
    "kmesh",
    "on_devices",
    "set_backend",
    "sigma_xy",
    "use_backend",
]
