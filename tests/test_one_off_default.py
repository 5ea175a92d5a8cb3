"""The one rule for the backend a user gets without choosing one (hamdesign.backend.default_backend_name)."""

from __future__ import annotations

import pytest

from hamdesign.backend import DEFAULT_ORDER, ONE_OFF_BACKEND, available_backends, default_backend_name
from hamdesign.bench import CASES, default_summary, grid_case, is_one_off, start_up_s


def test_one_off_evaluations_run_eagerly_and_the_rest_on_the_first_installed():
    assert default_backend_name(one_off=True) == ONE_OFF_BACKEND == "numpy"
    installed = available_backends()
    assert default_backend_name() == next(n for n in DEFAULT_ORDER if n in installed)


def test_forward_cases_are_one_off_and_gradient_cases_are_not():
    assert is_one_off(grid_case("shift_spectrum", "haldane", "small"))
    assert is_one_off(grid_case("hall_value", "haldane", "small"))
    assert not any(is_one_off(c) for c in CASES if c.name.startswith(("design_step", "hall_vg")))


def _row(case: str, backend: str, warmup_s: float | None, median_s: float | None, start_up_s: float | None = None) -> dict:
    return {"case": case, "backend": backend, "start_up_s": start_up_s, "warmup_s": warmup_s, "median_s": median_s}


def test_summary_costs_a_one_off_by_start_up_and_first_call_and_a_repeated_case_by_its_median():
    one_off = grid_case("shift_spectrum", "haldane", "small")
    rows = [_row(one_off.name, "jax", 0.9, 0.004), _row(one_off.name, "numpy", 0.05, 0.03)]
    summary = default_summary(one_off, rows)
    assert summary["default"] == "numpy" and summary["fastest"] == "numpy"
    assert summary["ratio_to_fastest"] == pytest.approx(1.0)
    rows = [_row(one_off.name, "torch", 0.02, 0.01, start_up_s=1.0), _row(one_off.name, "numpy", 0.1, 0.1)]
    summary = default_summary(one_off, rows)  # torch's first call is faster, its import is not
    assert summary["fastest"] == "numpy" and summary["default_cost_s"] == pytest.approx(0.1)
    rows = [_row(one_off.name, "torch", 0.02, 0.01), _row(one_off.name, "numpy", 0.1, 0.1)]
    assert default_summary(one_off, rows)["ratio_to_fastest"] == pytest.approx(5.0)
    repeated = next(c for c in CASES if c.name == "design_step_haldane")
    rows = [_row(repeated.name, "autograd", 0.01, 0.006), _row(repeated.name, "numpy", None, None)]
    summary = default_summary(repeated, rows)
    assert summary["fastest"] == "autograd" and summary["default_cost_s"] in (0.006, None)
    if summary["default"] == "autograd":
        assert summary["ratio_to_fastest"] == pytest.approx(1.0)
    else:  # the default (jax or torch) was not benchmarked
        assert summary["ratio_to_fastest"] is None


def test_start_up_is_measured_in_a_fresh_process():
    assert 0.0 < start_up_s("numpy") < 60.0
