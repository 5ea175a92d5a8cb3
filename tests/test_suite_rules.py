"""Rules the test suite keeps: nothing skips silently in CI, the package's doctests run."""

from __future__ import annotations

import doctest
import pkgutil
from pathlib import Path

import pytest

import conftest
from conftest import require_module

TESTS = Path(__file__).resolve().parent


def test_no_importorskip_anywhere_in_the_suite():
    # importorskip skips even with HAMDESIGN_REQUIRE_ALL_BACKENDS=1; conftest.require_module fails there
    banned = "importorskip" + "("
    offenders = [p.name for p in sorted(TESTS.glob("*.py")) if banned in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_require_module_skips_locally_and_fails_when_everything_is_required(monkeypatch):
    assert require_module("json").dumps([1]) == "[1]"
    monkeypatch.setattr(conftest, "REQUIRE_ALL", False)
    with pytest.raises(pytest.skip.Exception, match="no_such_module_hd"):
        require_module("no_such_module_hd")
    monkeypatch.setattr(conftest, "REQUIRE_ALL", True)
    with pytest.raises(pytest.fail.Exception, match="HAMDESIGN_REQUIRE_ALL_BACKENDS=1"):
        require_module("no_such_module_hd")


def test_the_package_doctests_pass():
    import hamdesign

    attempted = failed = 0
    for info in pkgutil.walk_packages(hamdesign.__path__, "hamdesign."):
        module = require_module(info.name)  # the backend adapters import their frameworks
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        attempted += result.attempted
        failed += result.failed
    assert failed == 0
    assert attempted >= 2  # the examples of backend.use_backend and sigma_xy at least
