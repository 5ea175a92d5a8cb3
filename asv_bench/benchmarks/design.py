"""One design step (objective + gradient) of each preset, per backend."""

from __future__ import annotations

from .common import AUTODIFF, block, require


class DesignStep:
    params = (AUTODIFF, ["haldane", "triangular", "photovoltaic"])
    param_names = ["backend", "preset"]
    timeout = 300

    def setup(self, backend, preset):
        from hamdesign.backend import use_backend
        from hamdesign.design import DesignRun, load_config

        be = require(backend)
        with use_backend(be):
            run = DesignRun(load_config(preset)[0])
            self.step = be.jit(be.value_and_grad(run.objective, has_aux=True))
            self.args = (be.asarray(run.initial_theta(0)), be.asarray(run.beta(0)))
            block(be, self.step(*self.args))
        self.be = be

    def time_step(self, backend, preset):
        from hamdesign.backend import use_backend

        with use_backend(self.be):
            block(self.be, self.step(*self.args))
