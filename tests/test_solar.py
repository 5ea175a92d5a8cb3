"""Solar spectra per angular frequency: totals, Jacobian, black-body shape."""

from __future__ import annotations

import pytest

import numpy as np
from conftest import require_module
from hamdesign.errors import ParameterError
from hamdesign.solar import blackbody, get_spectrum, irradiance_at
from hamdesign.units import BOLTZMANN, HBAR


def test_blackbody_total_and_peak():
    s = get_spectrum("blackbody5500")
    assert s.total() == pytest.approx(1366.0, rel=1e-9)
    # Wien's law per angular frequency: the peak of x³/(eˣ−1) is at x = 2.8214
    peak = s.omega[np.argmax(s.irradiance)] * HBAR / (BOLTZMANN * 5500.0)
    assert peak == pytest.approx(2.8214, abs=0.01)
    assert blackbody(3000.0, 10.0).total() == pytest.approx(10.0, rel=1e-9)


@pytest.mark.parametrize("name, total", [("am0", 1348.0), ("am15g", 1000.4), ("am15d", 900.1)])
def test_astm_g173_totals_survive_the_jacobian(name, total):
    require_module("pvlib")
    s = get_spectrum(name)
    assert np.all(np.diff(s.omega) > 0)
    assert s.total() == pytest.approx(total, rel=2e-3)
    energy, per_ev = s.per_ev()
    assert np.trapezoid(per_ev, energy) == pytest.approx(total, rel=2e-3)


def test_interpolation_is_zero_outside_the_table():
    s = get_spectrum("blackbody5500")
    assert irradiance_at(s, [-1.0, 1000.0]).tolist() == [0.0, 0.0]
    mid = s.energy_ev[100]
    assert irradiance_at(s, mid) == pytest.approx(s.irradiance[100])


def test_unknown_spectrum():
    with pytest.raises(ParameterError, match="unknown spectrum 'sunset'"):
        get_spectrum("sunset")
