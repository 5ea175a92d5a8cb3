"""The optax and torch.optim examples of docs/ml-frameworks.md run and improve σ_xy."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import require_module

DOC = Path(__file__).resolve().parents[1] / "docs" / "ml-frameworks.md"


def _blocks():
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def _start_sigma(backend: str) -> float:
    import hamdesign as hd
    from hamdesign.backend import use_backend
    from hamdesign.models import haldane_general
    from hamdesign.parametrize import Parametrization, ParamMap

    model = haldane_general()
    maps = {"t1": ParamMap("fixed", value=1.0), "M_A": ParamMap("bounded"), "M_B": ParamMap("bounded")}
    maps.update({f"t2_{s}{k}": ParamMap("magnitude") for s in "AB" for k in range(3)})
    maps.update({f"phi_{s}{k}": ParamMap("phase") for s in "AB" for k in range(3)})
    par = Parametrization.build(model, maps)
    with use_backend(backend) as be:
        return float(be.to_numpy(hd.sigma_xy(model, par.physical(be.asarray(par.initial(0))), hd.kmesh(30, 2), beta=1.0, mu=0.0)))


def test_optax_example():
    require_module("optax")
    require_module("jax")
    scope: dict = {}
    exec(compile(_blocks()[0], str(DOC), "exec"), scope)
    assert scope["jax_sigma"] > 0.6 and scope["jax_sigma"] > _start_sigma("jax") + 0.3


def test_torch_optim_example():
    require_module("torch")
    scope: dict = {}
    exec(compile(_blocks()[1], str(DOC), "exec"), scope)
    assert scope["torch_sigma"] > 0.6 and scope["torch_sigma"] > _start_sigma("torch") + 0.3
