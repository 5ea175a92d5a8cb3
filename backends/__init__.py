"""Backend adapters: one module per array library, each supplying what the array API lacks.

Every adapter module defines the members listed in :data:`ADAPTER_MEMBERS`, and its ``xp``
namespace must provide every name in :data:`XP_NAMES` (the array-API subset the physics in
``hamdesign`` uses). :func:`load` imports an adapter and checks both manifests, so a missing
name fails loudly at import instead of deep inside a calculation.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Backends in the order ``hamdesign backends`` lists them, with the pip extra that installs each.
KNOWN_BACKENDS: dict[str, str] = {
    "jax": "hamdesign[jax]",
    "torch": "hamdesign[torch]",
    "autograd": "hamdesign[autograd]",
    "numpy": "hamdesign",
}

#: The third-party module whose absence means the backend is not installed.
FRAMEWORK_MODULE: dict[str, str] = {
    "jax": "jax",
    "torch": "torch",
    "autograd": "autograd",
    "numpy": "numpy",
}

#: Members every adapter module must define.
ADAPTER_MEMBERS: tuple[str, ...] = (
    "name",
    "xp",
    "asarray",
    "to_numpy",
    "eigh",
    "matmul",
    "while_loop",
    "value_and_grad",
    "jit",
    "stop_gradient",
    "sequence_after",
    "rematerialize",
    "device",
    "version",
    "devices",
    "can_differentiate",
    "can_compile",
    "chunk_bytes",
)

#: Array-API names that hamdesign's physics code takes from ``xp``.
XP_NAMES: tuple[str, ...] = (
    "float64",
    "complex128",
    "int64",
    "pi",
    "asarray",
    "zeros",
    "ones",
    "eye",
    "arange",
    "linspace",
    "reshape",
    "stack",
    "concat",
    "expand_dims",
    "permute_dims",
    "matrix_transpose",
    "matmul",
    "tensordot",
    "take",
    "where",
    "sum",
    "prod",
    "mean",
    "max",
    "min",
    "abs",
    "sqrt",
    "exp",
    "log",
    "sin",
    "cos",
    "tanh",
    "real",
    "imag",
    "conj",
    "astype",
    "isfinite",
    "all",
    "clip",
    "round",
    "sort",
    "searchsorted",
)


def eager_while_loop(cond, body, state):
    """``state = body(state)`` while ``cond(state)`` (a 0-d boolean array) holds.

    The ``while_loop`` of the eager backends, with ``jax.lax.while_loop``'s contract.
    """
    while bool(cond(state)):
        state = body(state)
    return state


class BackendManifestError(ImportError):
    """An adapter module lacks a member of the backend contract."""


def load(name: str) -> ModuleType:
    """Import the adapter ``hamdesign.backends.<name>`` and check it against the manifests.

    Raises
    ------
    ModuleNotFoundError
        When the framework the adapter wraps is not installed (propagated from its import).
    BackendManifestError
        When the adapter or its ``xp`` namespace lacks a required name.
    """
    module = importlib.import_module(f"{__name__}.{name}")
    missing = [m for m in ADAPTER_MEMBERS if not hasattr(module, m)]
    missing += [f"xp.{n}" for n in XP_NAMES if not hasattr(module.xp, n)]
    if missing:
        raise BackendManifestError(f"backend {name!r} lacks {', '.join(missing)}")
    return module
