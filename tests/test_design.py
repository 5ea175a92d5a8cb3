"""The design engine: parametrizations, optimizers, schedules, runs, checkpoints, presets."""

from __future__ import annotations

import copy
import json
import math

import pytest

import numpy as np
from conftest import AUTODIFF, on_backend
from hamdesign.backend import use_backend
from hamdesign.design import PRESETS, DesignRun, load_config, texture_summary, validate_config
from hamdesign.errors import ConfigError
from hamdesign.models import haldane
from hamdesign.optimize import NonFiniteError, adam, cosine_ramp, load_checkpoint, log_linear, minimise, piecewise, rmsprop
from hamdesign.parametrize import Parametrization, ParamMap


# ---------------------------------------------------------------------------------- parametrizations
def test_maps_give_bounded_physical_values_and_invert(numpy_backend):
    m = haldane()
    par = Parametrization.build(
        m,
        {
            "t1": ParamMap("fixed", value=1.0),
            "t2": ParamMap("magnitude", max=0.7),
            "phi": ParamMap("phase"),
            "M": ParamMap("bounded", low=-0.5, high=1.5),
        },
    )
    assert par.variable_names == ("t2", "phi", "M")
    for theta in (np.array([-30.0, 7.0, 30.0]), np.array([30.0, -7.0, -30.0]), np.zeros(3)):
        p = par.physical_values(theta)
        assert p["t1"] == 1.0 and 0 <= p["t2"] <= 0.7 and -0.5 <= p["M"] <= 1.5 and -math.pi < p["phi"] <= math.pi
    target = {"t2": 0.3, "phi": 1.1, "M": 0.2}
    back = par.physical_values(par.from_physical(target))
    for key, value in target.items():
        assert back[key] == pytest.approx(value, abs=1e-12)


def test_tied_parameters_share_one_variable(numpy_backend):
    from hamdesign.models import haldane_general

    m = haldane_general()
    par = Parametrization.build(m, {f"t2_{s}{k}": ParamMap("magnitude", max=1.0, tie="t2") for s in "AB" for k in range(3)})
    assert par.variable_names.count("t2") == 1 and par.size == m.nparams - 5
    values = par.physical_values(par.initial(3))
    assert len({round(values[f"t2_{s}{k}"], 14) for s in "AB" for k in range(3)}) == 1
    with pytest.raises(Exception, match="share the same map"):
        Parametrization.build(
            m, {"t2_A0": ParamMap("magnitude", max=1.0, tie="x"), "t2_A1": ParamMap("magnitude", max=2.0, tie="x")}
        )


# ---------------------------------------------------------------------------------- optimizers and schedules
def _reference_rmsprop(grads, lr, decay=0.99, eps=1e-8):
    theta, nu = np.zeros_like(grads[0]), np.zeros_like(grads[0])
    for g in grads:
        nu = decay * nu + (1 - decay) * g * g
        theta = theta - lr * g / np.sqrt(nu + eps)
    return theta


def test_rmsprop_and_adam_match_their_formulas(numpy_backend):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(4) for _ in range(5)]
    opt = rmsprop()
    theta, state = np.zeros(4), opt.init(np.zeros(4))
    for g in grads:
        theta, state = opt.update(g, state, theta, 0.1)
    np.testing.assert_allclose(theta, _reference_rmsprop(grads, 0.1), rtol=1e-14)
    opt = adam()
    theta, state = np.zeros(4), opt.init(np.zeros(4))
    m = v = np.zeros(4)
    ref = np.zeros(4)
    for t, g in enumerate(grads, start=1):
        theta, state = opt.update(g, state, theta, 0.05)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        ref = ref - 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(theta, ref, rtol=1e-14)


def test_schedules():
    ramp = cosine_ramp(-2.0, -1.0, 100)
    for i in (0, 17, 50, 99):  # the original work's log β_i = −0.5 cos(2πi/200) − 1.5
        assert ramp(i) == pytest.approx(-0.5 * math.cos(2 * math.pi * i / 200) - 1.5, abs=1e-14)
    assert ramp(150) == -1.0
    lr = piecewise([0.1, 0.03], [50])
    assert lr(49) == 0.1 and lr(50) == 0.03
    kelvin = log_linear(30000.0, 300.0, 100, 350)
    assert kelvin(0) == 30000.0 and kelvin(600) == 300.0
    assert kelvin(225) == pytest.approx(3000.0, rel=1e-12)


# ---------------------------------------------------------------------------------- runs
def _small_haldane(steps=20, nk=16):
    cfg = copy.deepcopy(PRESETS["haldane"])
    cfg.update(steps=steps, kmesh=[nk, nk])
    cfg["evaluation"] = {"beta": 200.0, "nk": nk}
    return cfg


def test_trajectories_agree_across_backends():
    cfg = _small_haldane(steps=20)
    paths = {}
    for name in AUTODIFF:
        with on_backend(name):
            state = DesignRun(cfg).run(seed=5)
        paths[name] = (state.theta, np.array(state.history["loss"]))
    for name in AUTODIFF[1:]:
        np.testing.assert_allclose(paths[name][0], paths["jax"][0], rtol=1e-8, atol=1e-10, err_msg=name)
        np.testing.assert_allclose(paths[name][1], paths["jax"][1], rtol=1e-8, atol=1e-10, err_msg=name)


def test_resume_ends_in_the_same_state(tmp_path, ad_backend):
    cfg = _small_haldane(steps=12)
    cfg["checkpoint_every"] = 4
    run = DesignRun(cfg)
    straight = run.run(seed=2, out_dir=tmp_path / "straight")
    interrupted = run.run(seed=2, out_dir=tmp_path / "resumed", steps=8)  # stops after step 8, checkpointed
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.npz")[0].step == 8
    resumed = run.run(seed=2, out_dir=tmp_path / "resumed", resume=True)
    assert interrupted.step == 8 and resumed.step == 12
    np.testing.assert_allclose(resumed.theta, straight.theta, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], rtol=1e-12)


def test_non_finite_objective_stops_and_keeps_checkpoint(tmp_path):
    with on_backend("autograd") as be:
        xp = be.xp

        def objective(theta, beta):
            return xp.sum(theta * theta) * float("nan"), {}

        with pytest.raises(NonFiniteError, match="non-finite objective at step 0"):
            minimise(
                objective,
                np.ones(2),
                steps=5,
                optimizer=rmsprop(),
                learning_rate=lambda s: 0.1,
                beta=lambda s: 1.0,
                checkpoint=tmp_path / "c.npz",
            )
        state, _ = load_checkpoint(tmp_path / "c.npz")
        assert state.step == 0 and np.all(state.theta == 1.0)


def test_same_seed_same_result(ad_backend):
    cfg = _small_haldane(steps=5)
    a = DesignRun(cfg).run(seed=11)
    b = DesignRun(cfg).run(seed=11)
    np.testing.assert_array_equal(a.theta, b.theta)


# ---------------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(colour=1), "colour: unknown key"),
        (lambda c: c.update(steps="many"), "steps: expected an integer"),
        (lambda c: c.update(steps=0), "steps: expected an integer"),
        (lambda c: c["objective"].update(goal="biggest"), "objective.goal"),
        (lambda c: c["objective"].update(filling=0.5), "exactly one of mu or filling"),
        (lambda c: c["parameters"].update({"M_*": {"map": "bounded", "low": 1.0, "high": -1.0}}), "low < high"),
        (lambda c: c["parameters"].update({"M_*": {"map": "wobbly"}}), r"parameters\.M_\*\.map"),
        (lambda c: c["optimizer"].update(name="sgd"), "optimizer.name"),
        (lambda c: c["temperature"].update(schedule="hot"), "temperature.schedule"),
        (lambda c: c.update(kmesh=[0, 10]), "kmesh"),
    ],
)
def test_config_validation_names_the_key(change, message):
    cfg = copy.deepcopy(PRESETS["haldane"])
    change(cfg)
    with pytest.raises(ConfigError, match=message) as info:
        validate_config(cfg, "my.toml")
    assert str(info.value).startswith("my.toml: ")


def test_photocurrent_objective_interband_keys_are_validated_and_reach_the_observable():
    cfg = copy.deepcopy(PRESETS["photovoltaic"])
    assert cfg["objective"]["sc_eta"] == 0.0  # the original work's unbroadened virtual transitions
    validate_config(cfg, "pv.toml")
    for key, bad in (("sc_eta", -0.1), ("degen_thresh", "small")):
        broken = copy.deepcopy(cfg)
        broken["objective"][key] = bad
        with pytest.raises(ConfigError, match=f"objective.{key}"):
            validate_config(broken, "pv.toml")
    hall = copy.deepcopy(PRESETS["haldane"])
    hall["objective"]["sc_eta"] = 0.1
    with pytest.raises(ConfigError, match="only for observable = photocurrent"):
        validate_config(hall, "h.toml")
    assert validate_config(cfg, "pv.toml").objective.options.interband() == {"sc_eta": 0.0}


def test_toml_config_and_unknown_parameter_pattern(tmp_path, numpy_backend):
    import tomli_w

    path = tmp_path / "custom.toml"
    cfg = copy.deepcopy(PRESETS["haldane"])
    path.write_text(tomli_w.dumps(cfg))
    loaded, label = load_config(str(path))
    assert label == "custom" and loaded == cfg
    cfg["parameters"]["zeta*"] = {"map": "phase"}
    with pytest.raises(ConfigError, match="matches no parameter"):
        DesignRun(cfg)


def test_texture_summary_of_an_umbrella():
    angles = 2 * np.pi * np.arange(6) / 3
    cone = np.radians(44.0)
    spins = np.stack([np.sin(cone) * np.cos(angles), np.sin(cone) * np.sin(angles), np.full(6, np.cos(cone))], axis=-1)
    summary = texture_summary(spins)
    assert summary["cone_angle_deg"] == pytest.approx(44.0)
    assert summary["net_moment"] == pytest.approx(np.cos(cone))
    assert abs(summary["scalar_chirality"]) > 0.3


# ---------------------------------------------------------------------------------- command line
def test_design_command_writes_a_complete_result_folder(tmp_path):
    from typer.testing import CliRunner

    from hamdesign.cli import app

    cfg = _small_haldane(steps=4, nk=12)
    import tomli_w

    config = tmp_path / "small.toml"
    config.write_text(tomli_w.dumps(cfg))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["--backend", "autograd", "design", str(config), "--out", str(out), "--seeds", "0:2", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["seeds"] == [0, 1] and summary["quantity"] == "sigma_xy"
    folder = out / "seed_000"
    for name in ("result.json", "history.npz", "model.toml", "model_tb.dat", "checkpoint.npz", "history.png"):
        assert (folder / name).exists(), name
    data = json.loads((folder / "result.json").read_text())
    for key in ("parameters", "evaluation", "versions", "seed", "config", "backend", "parametrization", "design_variables"):
        assert key in data
    assert data["evaluation"]["units"]["sigma_xy"] == "e^2/h per layer"
    assert (folder / "history.png").stat().st_size > 10_000
    history = np.load(folder / "history.npz")
    assert len(history["loss"]) == 4 and "beta" in history.files
    from hamdesign.io import load_model

    exported = load_model(str(folder / "model_tb.dat"))
    with use_backend("numpy"):
        from hamdesign.observables.hall import hall_report

        again = hall_report(exported, None, 12, beta=200.0, mu=0.0)["sigma_xy"]
    assert again == pytest.approx(data["evaluation"]["sigma_xy"], abs=1e-9)


def test_design_command_bad_config_exit_2(tmp_path):
    from typer.testing import CliRunner

    from hamdesign.cli import app

    path = tmp_path / "bad.toml"
    path.write_text('steps = -3\nmodel = { name = "haldane" }\n')
    result = CliRunner().invoke(app, ["design", str(path)])
    assert result.exit_code == 2
    assert "bad.toml" in result.output


# ---------------------------------------------------------------------------------- the original work's results
@pytest.mark.slow
def test_haldane_rediscovery_ten_seeds():
    cfg, _ = load_config("haldane")
    with on_backend("jax"):
        run = DesignRun(cfg)
        for seed in range(10):
            state = run.run(seed)
            ev = run.evaluate(state.theta)
            p = run.par.physical_values(state.theta)
            assert abs(ev["sigma_xy"]) == pytest.approx(1.0, abs=1e-3), seed
            assert sorted(ev["chern_lattice"]) == [-1, 1], seed
            assert ev["sigma_xy_at_final_training_beta"] == pytest.approx(0.31, abs=0.01), seed
            assert abs(p["M_A"]) < 0.1 and abs(p["M_B"]) < 0.1, seed  # small against 3√3|t2| ≈ 5
            assert min(p[f"t2_{s}{k}"] for s in "AB" for k in range(3)) > 0.8, seed  # near the bound 1
            # Haldane flux pattern: the three A phases equal, the three B phases equal, φ_B = −φ_A = ±π/2
            phases_a = np.array([p[f"phi_A{k}"] for k in range(3)])
            phases_b = np.array([p[f"phi_B{k}"] for k in range(3)])
            assert np.ptp(phases_a) < 0.05 and np.ptp(phases_b) < 0.05, seed
            assert abs(abs(phases_a.mean()) - np.pi / 2) < 0.05 and abs(phases_a.mean() + phases_b.mean()) < 0.05, seed


@pytest.mark.slow
def test_triangular_design_reaches_sigma_six():
    cfg, _ = load_config("triangular")
    with on_backend("jax"):
        run = DesignRun(cfg)
        best = None
        for seed in range(4):
            ev = run.evaluate(run.run(seed).theta)
            if best is None or abs(ev["sigma_xy"]) > abs(best["sigma_xy"]):
                best = ev
    assert abs(best["sigma_xy"]) == pytest.approx(6.0, abs=1e-3)
    assert best["chern_lattice"] in ([5, 1, -3, -3], [3, 3, -1, -5], [-5, -1, 3, 3], [-3, -3, 1, 5])
    assert abs(best["sigma_xy_at_final_training_beta"]) == pytest.approx(3.09, abs=0.02)


@pytest.mark.slow
def test_photovoltaic_design_grows_current_and_is_noncoplanar():
    from hamdesign.design import _photocurrent_at

    cfg, _ = load_config("photovoltaic")
    with on_backend("jax"):
        run = DesignRun(cfg)
        theta0 = run.initial_theta(0)
        start = _photocurrent_at(run, theta0, run.evaluation_beta(), cfg["evaluation"]["nk"])["current_density"]
        ev = run.evaluate(run.run(0).theta)
    assert abs(ev["current_density"]) > 100 * abs(start)
    assert abs(ev["scalar_chirality"]) > 0.05  # noncoplanar
    for key in (
        "tau_s",
        "transverse_measure",
        "spectrum",
        "polarisation",
        "normalisation",
        "shift_current_density",
        "injection_current_density",
    ):
        assert key in ev
