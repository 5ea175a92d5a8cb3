"""Which array backend a call uses: taken from the arrays passed in, else ``use_backend``, else ``HAMDESIGN_BACKEND``.

Every public function that takes arrays is wrapped in :func:`follows_inputs`: a ``torch.Tensor``
argument means torch, a ``jax.Array`` (or a tracer under ``jax.jit``/``jax.grad``) jax, an autograd
box autograd, whatever ``HAMDESIGN_BACKEND`` says. The backend is resolved once, in the public
function, and made current for everything that function calls. Without such arrays (NumPy inputs,
the CLI) the innermost :func:`use_backend` block decides, else :func:`set_backend`, else
``HAMDESIGN_BACKEND``, else the first installed of :data:`DEFAULT_ORDER`.

The stack of ``use_backend`` blocks is a :class:`contextvars.ContextVar`, so threads and asyncio
tasks each see their own, and :func:`set_backend` (the process default, the CLI's ``--backend``)
never disturbs an enclosing block.

>>> from hamdesign.backend import use_backend, current
>>> with use_backend("numpy"):
...     current().name
'numpy'
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
import os
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TypeVar

from .errors import BackendError

#: Without ``HAMDESIGN_BACKEND`` the first installed of these is used (one-off evaluations aside: :func:`default_backend_name`).
DEFAULT_ORDER = ("jax", "torch", "autograd", "numpy")
#: The backend of a one-off evaluation (see :func:`default_backend_name`): eager, nothing to compile.
ONE_OFF_BACKEND = "numpy"
#: Top-level module of an array type → the backend that owns such arrays (autograd's boxes live in autograd).
OWNER_OF_MODULE = {"torch": "torch", "jax": "jax", "jaxlib": "jax", "autograd": "autograd"}

_stack: contextvars.ContextVar[tuple[ModuleType, ...]] = contextvars.ContextVar("hamdesign_backend_stack", default=())
_default: list[ModuleType] = []  # the process default from set_backend or the environment, resolved once

F = TypeVar("F", bound=Callable)


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


def default_backend_name(*, one_off: bool = False) -> str:
    """The backend a caller gets when nobody chose one (no ``--backend``, ``HAMDESIGN_BACKEND``, ``set_backend``).

    The one rule: a *one-off* evaluation (forward only, called once: ``hamdesign evaluate``) runs on
    :data:`ONE_OFF_BACKEND`, eager NumPy, because jax would spend longer compiling the graph than
    evaluating it (a 200-ω shift spectrum: ~1 s of compilation against ~0.05 s evaluated eagerly;
    docs/performance.md). Anything differentiated or called repeatedly (a design run, a benchmark's
    steady state) gets the first installed of :data:`DEFAULT_ORDER`, whose compiled calls repay the
    compilation. An explicit choice always wins over this rule.
    """
    if one_off:
        return ONE_OFF_BACKEND
    installed = available_backends()
    return next((n for n in DEFAULT_ORDER if n in installed), ONE_OFF_BACKEND)


def _environment_default() -> ModuleType:
    name = os.environ.get("HAMDESIGN_BACKEND", "").strip()
    return get_backend(name or default_backend_name())


def current() -> ModuleType:
    """The active backend adapter: the innermost ``use_backend``, else ``set_backend``, else the environment."""
    stack = _stack.get()
    if stack:
        return stack[-1]
    if not _default:
        _default.append(_environment_default())
    return _default[-1]


@contextlib.contextmanager
def use_backend(name: str | ModuleType) -> Iterator[ModuleType]:
    """Make ``name`` (or an adapter object with the members of the contract) active inside a ``with`` block."""
    backend = name if not isinstance(name, str) else get_backend(name)
    token = _stack.set(_stack.get() + (backend,))
    try:
        yield backend
    finally:
        _stack.reset(token)


def set_backend(name: str) -> ModuleType:
    """Make ``name`` the process default from now on (the CLI's ``--backend``); ``use_backend`` blocks still win."""
    backend = get_backend(name)
    _default[:] = [backend]
    return backend


def backend_of(*values) -> ModuleType | None:
    """The adapter that owns the first framework array among ``values`` (None for NumPy and plain numbers).

    Decided from the type's module name, so no framework is imported to ask: ``torch.Tensor`` (and
    torch.func's wrappers) → torch; ``jax.Array`` and jax tracers → jax; autograd's ``ArrayBox`` →
    autograd. An adapter already active for that framework (a custom or device-specific one) is kept.
    """
    for value in values:
        owner = OWNER_OF_MODULE.get(type(value).__module__.partition(".")[0])
        if owner is None:
            continue
        active = current()
        return active if active.name == owner else get_backend(owner)
    return None


def follows_inputs(function: F) -> F:
    """Run ``function`` on the backend of its array arguments (see :func:`backend_of`), else the active one."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        found = backend_of(*args, *kwargs.values())
        if found is None or found is current():
            return function(*args, **kwargs)
        with use_backend(found):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
