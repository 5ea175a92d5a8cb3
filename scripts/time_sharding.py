"""Wall time of one design step (value and gradient) on one device and sharded over N jax devices.

Usage::

    python scripts/time_sharding.py [--devices N] [--nk 96] [--repeats 5] [--gpu]

Without ``--gpu`` it makes N CPU devices with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``
(set here, before jax starts); on the same cores that shows the overhead and correctness of the
sharded program rather than a speed-up. With ``--gpu`` it uses the GPUs jax sees. Prints one JSON
object: compile and warm step times for both layouts, and the relative differences of the value
and of the gradient.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--nk", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="triangular", help="triangular (4 bands) or haldane (2 bands)")
    parser.add_argument("--gpu", action="store_true")
    args = parser.parse_args()
    if args.gpu:
        os.environ["HAMDESIGN_DEVICE"] = "gpu"
    else:
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={args.devices}"
    import hamdesign as hd
    import jax
    import numpy as np
    from hamdesign.lattice import kmesh
    from hamdesign.models import get_model
    from hamdesign.objectives import hall_objective
    from hamdesign.parametrize import Parametrization

    hd.set_backend("jax")
    model = get_model(args.model)
    par = Parametrization.build(model)
    theta = jax.numpy.asarray(np.asarray(model.default_params) + 0.5 * np.random.default_rng(0).standard_normal(model.nparams))
    kfrac = kmesh(args.nk, 2)

    def timed(devices: int | None) -> dict:
        block = hd.on_devices(devices) if devices else contextlib.nullcontext()
        with block:
            step = jax.jit(jax.value_and_grad(hall_objective(model, par, kfrac, filling=0.5), has_aux=True))
            start = time.perf_counter()
            (value, _), grad = jax.block_until_ready(step(theta, 5.0))
            first = time.perf_counter() - start
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                jax.block_until_ready(step(theta, 5.0))
                times.append(time.perf_counter() - start)
        return {"first_call_s": first, "step_s": statistics.median(times), "value": np.asarray(value), "grad": np.asarray(grad)}

    one, many = timed(None), timed(args.devices)
    scale = float(np.max(np.abs(one["grad"])))
    report = {
        "model": args.model,
        "nk": args.nk**2,
        "devices": args.devices,
        "platform": jax.devices()[0].platform,
        "one_device": {k: one[k] for k in ("first_call_s", "step_s")},
        "sharded": {k: many[k] for k in ("first_call_s", "step_s")},
        "speedup": one["step_s"] / many["step_s"],
        "value_rel_diff": float(abs(many["value"] - one["value"]) / max(abs(float(one["value"])), 1e-300)),
        "grad_rel_diff": float(np.max(np.abs(many["grad"] - one["grad"])) / max(scale, 1e-300)),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
