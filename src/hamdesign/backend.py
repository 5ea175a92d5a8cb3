"""The active array backend: chosen once from ``HAMDESIGN_BACKEND``, switchable with ``use_backend``.

>>> from hamdesign.backend import use_backend, current
>>> with use_backend("numpy"):
...     current().name
'numpy'
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from types import ModuleType

from .errors import BackendError

#: Without ``HAMDESIGN_BACKEND`` the first installed of these is used.
DEFAULT_ORDER = ("jax", "torch", "autograd", "numpy")

_active: list[ModuleType] = []


def _known() -> dict[str, str]:
    from hamdesign.backends import KNOWN_BACKENDS

    return KNOWN_BACKENDS


def available_backends() -> list[str]:
    """Names of the backends whose framework is importable here (without importing it)."""
    from hamdesign.backends import FRAMEWORK_MODULE

    return [n for n in _known() if importlib.util.find_spec(FRAMEWORK_MODULE[n]) is not None]


def get_backend(name: str) -> ModuleType:
    """The adapter module for ``name``; raises :class:`BackendError` if unknown or not installed."""
    from hamdesign.backends import BackendManifestError, load

    known = _known()
    key = name.strip().lower()
    if key not in known:
        raise BackendError(f"unknown backend {name!r}; choose one of: {', '.join(known)}")
    try:
        return load(key)
    except BackendManifestError as err:
        raise BackendError(str(err)) from err
    except ImportError as err:
        raise BackendError(
            f"backend {key!r} is not installed ({err}); install it with: pip install '{known[key]}' "
            f"(installed: {', '.join(available_backends()) or 'none'})"
        ) from err
    except RuntimeError as err:  # device selection
        raise BackendError(f"backend {key!r}: {err}") from err


def current() -> ModuleType:
    """The active backend adapter (the innermost ``use_backend``, else ``HAMDESIGN_BACKEND``)."""
    if _active:
        return _active[-1]
    name = os.environ.get("HAMDESIGN_BACKEND", "").strip()
    if not name:
        installed = available_backends()
        name = next((n for n in DEFAULT_ORDER if n in installed), "numpy")
    backend = get_backend(name)
    _active.append(backend)
    return backend


@contextlib.contextmanager
def use_backend(name: str | ModuleType) -> Iterator[ModuleType]:
    """Make ``name`` (or an adapter object with the members of the contract) active inside a ``with`` block."""
    backend = name if not isinstance(name, str) else get_backend(name)
    _active.append(backend)
    try:
        yield backend
    finally:
        _active.pop()


def set_backend(name: str) -> ModuleType:
    """Make ``name`` the active backend from now on (the CLI's ``--backend``)."""
    backend = get_backend(name)
    _active.clear()
    _active.append(backend)
    return backend
