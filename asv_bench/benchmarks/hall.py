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


class FermiLevelScan:
    """bcc Fe (18 bands, tests/data/wannier): the AHC pseudovector at many Fermi levels in one pass over k.

    ``report`` is what ``hamdesign evaluate --mu START:STOP:COUNT`` runs (sorted fermi-sea
    contraction, NumPy); ``dense`` is the differentiable API path (an (nμ, nk·nband) occupation
    matrix per chunk). Side by side, they show what the sorted contraction saves.
    """

    params = (["report", "dense"], [8, 16], [1, 1000])
    param_names = ["path", "nk", "levels"]
    timeout = 600

    def setup(self, path, nk, levels):
        from pathlib import Path

        import numpy as np
        from hamdesign.io import load_model

        root = Path(__file__).resolve().parents[2]
        self.model = load_model(str(root / "tests" / "data" / "wannier" / "Fe_tb.dat.gz"), ws_distance=False)
        self.mus = np.linspace(16.0, 20.0, levels)

    def compute(self, path, nk, levels):
        """(nμ, 3) conductivities in S/cm along either path."""
        import hamdesign as hd
        import numpy as np
        from hamdesign.backend import use_backend
        from hamdesign.observables.hall import hall_report

        with use_backend("numpy"):
            if path == "report":
                report = hall_report(self.model, None, nk, beta=50.0, mu=self.mus)
                return np.array([np.atleast_1d(report["sigma_bulk_S_per_cm"][p]) for p in ("yz", "zx", "xy")]).T
            return np.atleast_2d(hd.anomalous_hall_conductivity(self.model, None, hd.kmesh(nk, 3), beta=50.0, mu=self.mus))

    def time_scan(self, path, nk, levels):
        self.compute(path, nk, levels)


class FeEigensystem:
    """bcc Fe (18 bands): the eigensystem and its band-basis derivative matrices on a 16³ mesh, NumPy.

    ``paired`` carries two Hermitian derivatives per matrix, one change of basis for both
    (:func:`hamdesign.model.paired_bloch_terms`); unpaired is the path it replaced, one per
    derivative. ``order`` 1: the three velocities (Hall); 2: also the six second derivatives (shift).
    """

    params = ([True, False], [1, 2])
    param_names = ["paired", "order"]
    timeout = 300
    nk = 16

    def setup(self, paired, order):
        from pathlib import Path

        import hamdesign as hd
        from hamdesign.backend import use_backend
        from hamdesign.io import load_model
        from hamdesign.spectrum import chunk_size, k_chunks

        root = Path(__file__).resolve().parents[2]
        self.model = load_model(str(root / "tests" / "data" / "wannier" / "Fe_tb.dat.gz"), ws_distance=False)
        with use_backend("numpy"):  # the numpy adapter's cache-sized chunks
            self.chunks = list(k_chunks(hd.kmesh(self.nk, 3), chunk_size(self.model.norb, order=order)))

    def compute(self, paired, order):
        """The band-basis matrices of every chunk: a list of (v_band, w_band)."""
        from hamdesign import model as model_module
        from hamdesign.backend import use_backend
        from hamdesign.spectrum import eigensystem

        saved, model_module.PAIRED_DERIVATIVES = model_module.PAIRED_DERIVATIVES, paired
        try:
            with use_backend("numpy"):
                return [eigensystem(self.model, None, kc, order=order, vectors=False)[2:] for kc in self.chunks]
        finally:
            model_module.PAIRED_DERIVATIVES = saved

    def time_eigensystem(self, paired, order):
        self.compute(paired, order)
