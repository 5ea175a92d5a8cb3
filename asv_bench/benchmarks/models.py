"""Every stage across the four benchmark models and three mesh sizes each.

Models: ``haldane`` (2 bands, 2D), ``triangular`` (4 bands, 2D), ``kondo_chain`` (24 bands, 1D)
and ``random3d16`` (16 orbitals, 3D, complex hoppings, no symmetry). ``size`` picks a mesh per
model (small / medium / large in :data:`MESHES`), so one parameter grid covers them all.
Stages: H(k) construction, eigh, σ_xy value and value-and-gradient (2D models; asv skips the
others), the shift-current spectrum (200 ω), and peak memory at the largest size.
"""

from __future__ import annotations

import numpy as np

from .common import AUTODIFF, BACKENDS, block, require

MODELS = ["haldane", "triangular", "kondo_chain", "random3d16"]
SIZES = ["small", "medium", "large"]
MESHES = {
    "haldane": {"small": 30, "medium": 100, "large": 200},
    "triangular": {"small": 24, "medium": 48, "large": 96},
    "kondo_chain": {"small": 64, "medium": 256, "large": 1024},
    "random3d16": {"small": 4, "medium": 8, "large": 12},
}
OMEGA = np.linspace(0.05, 4.0, 200)


def random3d16(seed: int = 0):
    """A 16-orbital cubic model with random on-site energies and complex first-neighbour hoppings."""
    from hamdesign.lattice import Lattice
    from hamdesign.model import TightBinding

    rng = np.random.default_rng(seed)
    norb = 16
    params, hops = {}, []
    for i in range(norb):
        params[f"e{i}"] = float(rng.normal())
        hops.append((i, i, (0, 0, 0), f"e{i}"))
    for i in range(norb):
        for j in range(norb):
            for R in ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)):
                if (R == (0, 0, 0) and j <= i) or rng.uniform() < 0.7:
                    continue
                name = f"t{i}_{j}_{''.join(map(str, R))}"
                params[name], params[f"a_{name}"] = float(rng.normal(scale=0.5)), float(rng.uniform(-3, 3))
                hops.append((i, j, R, f"{name}*exp(i*a_{name})"))
    return TightBinding.build(Lattice(np.eye(3)), rng.uniform(0, 1, size=(norb, 3)), hops, params, name="random3d16")


def make_model(name: str):
    from hamdesign.models import get_model

    return random3d16() if name == "random3d16" else get_model(name)


def _prepare(bench, backend: str, model: str, size: str):
    """Set ``bench.be``, ``bench.model`` and ``bench.k`` (the model's mesh at ``size``)."""
    import hamdesign as hd

    bench.be = require(backend)
    bench.model = make_model(model)
    bench.k = hd.kmesh(MESHES[model][size], bench.model.dim)


class HamiltonianAndEigh:
    """H(k) on the mesh, and its eigendecomposition, forward."""

    params = (BACKENDS, MODELS, SIZES)
    param_names = ["backend", "model", "size"]
    timeout = 300

    def setup(self, backend, model, size):
        import hamdesign as hd
        from hamdesign.backend import use_backend

        _prepare(self, backend, model, size)
        with use_backend(self.be):
            self.p = self.be.asarray(self.model.default_params)
            self.h = hd.hamiltonian(self.model, self.p, self.k)
            block(self.be, self.be.eigh(self.h))

    def time_hamiltonian(self, backend, model, size):
        import hamdesign as hd
        from hamdesign.backend import use_backend

        with use_backend(self.be):
            block(self.be, hd.hamiltonian(self.model, self.p, self.k))

    def time_eigh(self, backend, model, size):
        block(self.be, self.be.eigh(self.h))


class HallAcrossModels:
    """σ_xy at half filling, value and value-and-gradient (2D models)."""

    params = (AUTODIFF, MODELS, SIZES)
    param_names = ["backend", "model", "size"]
    timeout = 300

    def setup(self, backend, model, size):
        import hamdesign as hd
        from hamdesign.backend import use_backend

        _prepare(self, backend, model, size)
        if self.model.dim != 2:
            raise NotImplementedError("σ_xy is benchmarked on 2D models")
        with use_backend(self.be):
            self.fn = self.be.jit(self.be.value_and_grad(lambda p: hd.sigma_xy(self.model, p, self.k, beta=5.0, filling=0.5)))
            self.p = self.be.asarray(self.model.default_params)
            block(self.be, self.fn(self.p))

    def time_value_and_grad(self, backend, model, size):
        from hamdesign.backend import use_backend

        with use_backend(self.be):
            block(self.be, self.fn(self.p))


class ShiftAcrossModels:
    """Shift-current spectrum, 200 ω, one component along the first lattice direction."""

    params = (BACKENDS, MODELS, SIZES)
    param_names = ["backend", "model", "size"]
    timeout = 600

    def setup(self, backend, model, size):
        import hamdesign as hd
        from hamdesign.backend import use_backend

        _prepare(self, backend, model, size)
        component = "yyy" if self.model.dim == 2 else "xxx"
        with use_backend(self.be):
            self.fn = self.be.jit(lambda p: hd.shift_conductivity(self.model, p, self.k, OMEGA, components=component, beta=38.68, filling=0.5, eta=0.05).sigma)
            self.p = self.be.asarray(self.model.default_params)
            block(self.be, self.fn(self.p))

    def time_shift_spectrum(self, backend, model, size):
        from hamdesign.backend import use_backend

        with use_backend(self.be):
            block(self.be, self.fn(self.p))

    def peakmem_shift_spectrum(self, backend, model, size):
        from hamdesign.backend import use_backend

        with use_backend(self.be):
            block(self.be, self.fn(self.p))
