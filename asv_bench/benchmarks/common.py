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
    """Wait for asynchronous backends (jax) and return a NumPy copy."""
    first = value[0] if isinstance(value, tuple) else value
    return be.to_numpy(first)
