"""Shift-current spectra and the photocurrent objective, per backend."""

from __future__ import annotations

import numpy as np

from .common import AUTODIFF, BACKENDS, block, require

OMEGA = np.linspace(0.5, 8.0, 200)


def _shift_setup(backend, model_name, nk):
    import hamdesign as hd
    from hamdesign.backend import use_backend
    from hamdesign.models import get_model

    be = require(backend)
    model = get_model(model_name)
    kfrac = hd.kmesh(nk, model.dim)
    comp = "yyy" if model.dim == 2 else "xxx"
    omega = OMEGA if model.dim == 2 else np.linspace(0.02, 2.0, 200)

    def spectrum(p):
        return hd.shift_conductivity(model, p, kfrac, omega, components=comp, beta=100.0, filling=0.5, eta=0.05).sigma

    with use_backend(be):
        fn = spectrum  # eager: compiling the chunked spectrum of a large mesh costs more than it saves
        params = be.asarray(model.default_params)
        block(be, fn(params))
    return be, fn, params


class ShiftSpectrum:
    """σ^{abc}(ω) on 200 photon energies: hBN (2 bands) on 200×200 k, the 24-band chain on 2000 k."""

    params = (BACKENDS, [("hbn", 200), ("kondo_chain", 2000)])
    param_names = ["backend", "model_nk"]
    timeout = 600

    def setup(self, backend, model_nk):
        self.be, self.fn, self.p = _shift_setup(backend, *model_nk)

    def time_spectrum(self, backend, model_nk):
        from hamdesign.backend import use_backend

        with use_backend(self.be):
            block(self.be, self.fn(self.p))


class ShiftTensor:
    """The whole tensor σ^{abc}(ω) (components="all", 59 ω) in one pass: random 4-band cubic model.

    Compare with ``ShiftTensorOneComponent``: the whole tensor should cost at most ~3× one component.
    """

    params = (BACKENDS, [20, 40])
    param_names = ["backend", "nk"]
    timeout = 900
    components = "all"

    def setup(self, backend, nk):
        import hamdesign as hd
        from hamdesign.backend import use_backend
        from hamdesign.bench import random_cubic

        self.be = require(backend)
        model = random_cubic(4, seed=0)
        kfrac = hd.kmesh(nk, 3)
        omega = np.linspace(0.09, 5.4, 59)
        settings = {"beta": 100.0, "mu": 0.158, "eta": 0.05, "smearing": "lorentzian", "components": self.components}

        def tensor(p):
            return hd.shift_conductivity(model, p, kfrac, omega, **settings).sigma

        with use_backend(self.be):
            self.fn = self.be.jit(tensor) if backend == "jax" else tensor
            self.p = self.be.asarray(model.default_params)
            block(self.be, self.fn(self.p))

    def time_tensor(self, backend, nk):
        from hamdesign.backend import use_backend

        with use_backend(self.be):
            block(self.be, self.fn(self.p))


class ShiftTensorOneComponent(ShiftTensor):
    """σ^{xxx}(ω) alone on the same model, mesh and ω: the reference for ``ShiftTensor``."""

    components = "xxx"


class ShiftSpectrumMemory:
    """Peak memory of a 24-band shift spectrum on 10⁶ k-points (numpy forward; chunked)."""

    params = (["numpy"], [("kondo_chain", 1_000_000)])
    param_names = ["backend", "model_nk"]
    timeout = 1800

    def peakmem_spectrum(self, backend, model_nk):
        import hamdesign as hd
        from hamdesign.backend import use_backend
        from hamdesign.models import kondo_chain

        be = require(backend)
        model = kondo_chain()
        with use_backend(be):
            hd.shift_conductivity(
                model,
                None,
                hd.kmesh(model_nk[1], 1),
                np.linspace(0.02, 2.0, 200),
                components="xxx",
                beta=100.0,
                filling=0.5,
                eta=0.05,
            )


class PhotocurrentValueAndGrad:
    """Grid-free solar photocurrent (shift + injection) and its gradient: 24-band chain."""

    params = (AUTODIFF, [32, 128])
    param_names = ["backend", "nk"]
    timeout = 300

    def setup(self, backend, nk):
        import hamdesign as hd
        from hamdesign.backend import use_backend
        from hamdesign.models import kondo_chain

        be = require(backend)
        model = kondo_chain()
        kfrac = hd.kmesh(nk, 1)
        with use_backend(be):
            self.fn = be.jit(be.value_and_grad(lambda p: hd.photocurrent(model, p, kfrac, beta=38.68, filling=0.5)["total"]))
            self.p = be.asarray(model.default_params)
            block(be, self.fn(self.p))
        self.be = be

    def time_value_and_grad(self, backend, nk):
        from hamdesign.backend import use_backend

        with use_backend(self.be):
            block(self.be, self.fn(self.p))
