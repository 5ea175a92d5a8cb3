"""Shared setup for the benchmarks: public API only, compile in setup, wait on results."""

from __future__ import annotations

import importlib.util

BACKENDS = ["jax", "torch", "autograd", "numpy"]
AUTODIFF = ["jax", "torch", "autograd"]
_MODULE = {"jax": "jax", "torch": "torch", "autograd": "autograd", "numpy": "numpy"}


def require(backend: str):
    """The adapter for ``backend``, or NotImplementedError (asv's "skip") when not installed."""
    if importlib.util.find_spec(_MODULE[backend]) is None:
        raise NotImplementedError(f"{backend} not installed")
    from hamdesign.backend import get_backend

    return get_backend(backend)


def block(be, value):
    """Wait for asynchronous backends (jax): convert the first array of a nested result to NumPy."""
    while isinstance(value, (tuple, list, dict)):
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    return be.to_numpy(value)
