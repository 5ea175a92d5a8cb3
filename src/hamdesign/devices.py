"""One evaluation across several devices: the k-mesh sharded over a jax device set.

Every observable is a mean over k evaluated chunk by chunk (:func:`hamdesign.spectrum.k_chunks`)
from k-only factors that enter as backend arrays in one place (``model._k_factors``). Inside an
:func:`on_devices` block on the jax backend those factors are laid out along k over the device set
(a ``NamedSharding`` of a one-axis ``jax.sharding.Mesh``) and every other array is replicated on it,
so XLA partitions each chunk's work over the devices and turns each sum over k (the observable,
μ at a filling, their gradients) into a cross-device reduction: values and gradients are those of
one device, to round-off. No observable knows about devices.

Each device holds one chunk's worth of k-points, so a chunk of the sharded evaluation spans
``len(devices)`` times as many k-points as a single-device one (the memory bound is per device).
A chunk whose length is not a multiple of the device count is split into the largest multiple
(sharded) and the few points left over (fewer than the device count, replicated): every k-point is
counted once with its own weight, no padding.

>>> from hamdesign.devices import active_devices
>>> active_devices() is None
True
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

from . import backend as _backend
from .errors import BackendError, HamdesignError


class DeviceError(HamdesignError):
    """A device set that this machine or backend cannot provide."""


_active: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("hamdesign_devices", default=None)


def active_devices() -> tuple | None:
    """The device set of the innermost :func:`on_devices` block (jax devices), or None outside one."""
    return _active.get()


def device_count() -> int:
    """How many devices share the k-mesh now (1 outside an :func:`on_devices` block)."""
    devices = _active.get()
    return 1 if devices is None else len(devices)


def available_devices() -> list:
    """The jax devices of the selected platform (``HAMDESIGN_DEVICE``: cpu or gpu) on this host.

    Raises :class:`BackendError` when the active backend is not jax (only jax shards).
    """
    be = _backend.current()
    if be.name != "jax":
        raise BackendError(f"sharding the k-mesh over devices needs the jax backend, not {be.name}")
    return be.local_devices()


def resolve_devices(devices: int | Sequence) -> tuple:
    """``devices`` as a tuple of distinct jax devices; :class:`DeviceError` if unavailable.

    A count N takes this process's first N devices; a list may name any device of the platform,
    also those of other processes after ``jax.distributed.initialize()`` (a multi-host mesh).
    """
    local = available_devices()
    if isinstance(devices, bool) or not isinstance(devices, int):
        chosen = tuple(devices)
        known = _backend.current().global_devices()
        if not chosen or len(set(chosen)) != len(chosen) or any(d not in known for d in chosen):
            raise DeviceError(f"devices must be distinct jax devices of {[str(d) for d in known]}, got {list(chosen)}")
        return chosen
    if devices < 1:
        raise DeviceError(f"the number of devices must be at least 1, got {devices}")
    if devices > len(local):
        platform = local[0].platform
        hint = " (on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N before jax starts)" if platform == "cpu" else ""
        raise DeviceError(f"{devices} devices asked for, but jax sees {len(local)} {platform} device(s){hint}")
    return tuple(local[:devices])


@contextlib.contextmanager
def on_devices(devices: int | Sequence) -> Iterator[tuple]:
    """Shard the k-mesh of every evaluation inside the block over ``devices`` (a count or jax devices).

    jax only (:class:`BackendError` otherwise). Functions jitted inside the block see the device
    set at trace time: trace (first call) and run them inside it.

    >>> import hamdesign
    >>> with hamdesign.use_backend("jax"), hamdesign.on_devices(1) as devs:
    ...     len(devs)
    1
    """
    chosen = resolve_devices(devices)
    token = _active.set(chosen)
    try:
        yield chosen
    finally:
        _active.reset(token)


def sharded_lengths(n: int, count: int) -> list[int]:
    """``n`` k-points as the largest multiple of ``count`` (sharded) and the remainder (replicated), empty parts dropped."""
    body = n - n % count
    return [part for part in (body, n - body) if part]


def along_k(values):
    """A NumPy array whose first axis runs over k as a backend array: sharded over the active device set.

    The one place where the mesh meets the devices (``model._k_factors`` calls it); outside an
    :func:`on_devices` block, or on a backend other than jax, it is ``asarray``.
    """
    be = _backend.current()
    devices = _active.get()
    if devices is None or be.name != "jax":
        return be.asarray(values)
    return be.shard_along_k(values, devices)
