"""Anomalous Hall conductivity: value, and value-and-gradient (one design step's physics)."""

from __future__ import annotations

from .common import AUTODIFF, BACKENDS, block, require


def _setup(backend, model_name, nk, with_grad):
    import hamdesign as hd
    from hamdesign.backend import use_backend
    from hamdesign.models import get_model

    be = require(backend)
    model = get_model(model_name)
    kfrac = hd.kmesh(nk, model.dim)

    def objective(p):
        return hd.sigma_xy(model, p, kfrac, beta=5.0, filling=0.5)

    with use_backend(be):
        fn = be.jit(be.value_and_grad(objective) if with_grad else objective)
        params = be.asarray(model.default_params)
        block(be, fn(params))  # compile / warm up outside the timed region
    return be, fn, params


class SigmaXYValueAndGrad:
    """σ_xy and dσ_xy/dθ at half filling (μ by root finding), β = 5."""

    params = (AUTODIFF, ["haldane"], [30, 100, 200])
    param_names = ["backend", "model", "nk"]
    timeout = 300

    def setup(self, backend, model, nk):
        self.be, self.fn, self.p = _setup(backend, model, nk, True)

    def time_value_and_grad(self, backend, model, nk):
        from hamdesign.backend import use_backend

        with use_backend(self.be):
            block(self.be, self.fn(self.p))

    def peakmem_value_and_grad(self, backend, model, nk):
        from hamdesign.backend import use_backend

        with use_backend(self.be):
            block(self.be, self.fn(self.p))


class SigmaXYValue:
    """σ_xy forward only (numpy included)."""

    params = (BACKENDS, ["haldane"], [30, 100, 200])
    param_names = ["backend", "model", "nk"]
    timeout = 300

    def setup(self, backend, model, nk):
        self.be, self.fn, self.p = _setup(backend, model, nk, False)

    def time_value(self, backend, model, nk):
        from hamdesign.backend import use_backend

        with use_backend(self.be):
            block(self.be, self.fn(self.p))
