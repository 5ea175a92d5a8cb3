"""Design configurations: parsed once into frozen dataclasses, defaults in one place, errors naming the key."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

import numpy as np
from hamdesign.config import (
    NON_NEGATIVE,
    OBSERVABLES,
    DesignConfig,
    LearningRate,
    Observable,
    PhotocurrentOptions,
    option,
    parse_config,
    parse_table,
    section,
)
from hamdesign.design import OBJECTIVE_PATHS, PRESETS, DesignRun, validate_config
from hamdesign.errors import ConfigError
from hamdesign.parametrize import ParamMap


def _minimal(**objective) -> dict:
    return {
        "model": {"name": "haldane_general"},
        "objective": {"observable": "sigma_xy", "mu": 0.0, **objective},
        "optimizer": {},
        "temperature": {"schedule": "cosine_log_beta"},
    }


def test_absent_keys_take_their_defaults():
    cfg = parse_config(_minimal())
    assert (cfg.steps, cfg.kmesh, cfg.seeds, cfg.init_scale, cfg.checkpoint_every) == (100, 60, (0,), 1.0, 10)
    assert cfg.parameters == ()
    opt = cfg.optimizer
    assert (opt.name, opt.decay, opt.learning_rate) == ("rmsprop", 0.99, LearningRate(values=(0.1,)))
    t = cfg.temperature
    assert (t.start, t.end, t.ramp_steps, t.start_kelvin) == (-2.0, -1.0, 100, None)
    assert (cfg.evaluation.beta, cfg.evaluation.kelvin, cfg.evaluation.nk) == (200.0, None, None)
    assert cfg.objective.goal == "maximize" and cfg.objective.options is None
    kelvin = parse_config({**_minimal(), "temperature": {"schedule": "log_linear_kelvin"}}).temperature
    assert (kelvin.start_kelvin, kelvin.end_kelvin, kelvin.begin, kelvin.finish, kelvin.start) == (30000.0, 300.0, 100, 350, None)
    assert parse_config({**_minimal(), "temperature": {"schedule": "constant_beta"}}).temperature.start == 0.0


def test_photocurrent_objective_has_its_own_defaults_and_goal():
    cfg = parse_config({**_minimal(), "objective": {"observable": "photocurrent", "filling": 0.5, "tau": 2e-13}})
    assert cfg.objective.goal == "maximize_abs"
    assert cfg.objective.options == PhotocurrentOptions(tau=2e-13)
    assert cfg.objective.options.spectrum == "blackbody5500" and cfg.objective.options.interband() == {}


def test_values_are_converted_and_the_raw_mapping_is_kept_apart():
    raw = _minimal()
    raw.update(kmesh=[8, 8], seeds=[3, 1], parameters={"t1": {"map": "fixed", "value": 1}, "M_*": {"map": "bounded"}})
    raw["optimizer"]["learning_rate"] = {"values": [1, 0.5], "boundaries": [10]}
    cfg = parse_config(raw)
    assert cfg.kmesh == (8, 8) and cfg.seeds == (3, 1)
    assert cfg.parameters == (("t1", ParamMap("fixed", value=1.0)), ("M_*", ParamMap("bounded")))
    assert cfg.optimizer.learning_rate == LearningRate(values=(1.0, 0.5), boundaries=(10,))
    assert cfg.raw == raw
    raw["steps"] = 5
    raw["optimizer"]["learning_rate"]["values"][0] = 9
    assert "steps" not in cfg.raw and cfg.raw["optimizer"]["learning_rate"]["values"][0] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3


@pytest.mark.parametrize(
    "change, key, message",
    [
        (lambda c: c.update(colour=1), "colour", "unknown key; allowed: checkpoint_every, evaluation"),
        (lambda c: c.pop("temperature"), "temperature", "missing"),
        (lambda c: c.update(model="haldane"), "model", "expected a table"),
        (lambda c: c["model"].update(thickness=-1.0), "model.thickness", "expected a positive number"),
        (lambda c: c["model"].update(colour=1), "model.colour", "allowed: name, thickness"),
        (lambda c: c["model"].update(name=3), "model.name", "expected a built-in model name"),
        (lambda c: c.update(checkpoint_every=0), "checkpoint_every", "expected an integer >= 1"),
        (lambda c: c.update(seeds=[]), "seeds", "non-empty list"),
        (lambda c: c.update(init_scale=True), "init_scale", "expected a non-negative number"),
        (lambda c: c.update(parameters={"t1": {"map": "fixed"}}), "parameters.t1.value", "a fixed map needs a value"),
        (lambda c: c.update(parameters={"t*": {"map": "magnitude", "max": 0.0}}), "parameters.t*.max", "must be positive"),
        (lambda c: c.update(parameters={"t*": {"map": "phase", "tie": 1}}), "parameters.t*.tie", "expected a label"),
        (lambda c: c.update(parameters={"t*": {"low": "x"}}), "parameters.t*.low", "expected a finite number"),
        (lambda c: c.update(parameters={"t*": "phase"}), "parameters.t*", "expected a table"),
        (lambda c: c["objective"].update(goal="target"), "objective.target", "needs a numeric target"),
        (lambda c: c["objective"].update(filling=1.5), "objective.filling", "expected a number in [0, 1]"),
        (lambda c: c["objective"].update(mu=float("nan")), "objective.mu", "expected a finite number"),
        (lambda c: c["objective"].update(gap_min=-1), "objective.gap_min", "non-negative"),
        (lambda c: c["objective"].update(spectrum="am0"), "objective.spectrum", "only for observable = photocurrent"),
        (lambda c: c["objective"].update(wobble=1), "objective.wobble", "unknown key; allowed: component, degen"),
        (lambda c: c["objective"].update(observable="chern"), "objective.observable", "expected one of sigma_xy"),
        (lambda c: c["optimizer"].update(decay=1.0), "optimizer.decay", "expected a number in (0, 1)"),
        (lambda c: c["optimizer"].update(learning_rate={"values": [0.1, -1]}), "optimizer.learning_rate.values", "positive"),
        (
            lambda c: c["optimizer"].update(learning_rate={"values": [0.1, 0.2], "boundaries": []}),
            "optimizer.learning_rate.boundaries",
            "one integer step fewer",
        ),
        (lambda c: c["optimizer"].update(learning_rate={"values": [0.1], "x": 1}), "optimizer.learning_rate.x", "unknown"),
        (lambda c: c["optimizer"].update(learning_rate="fast"), "optimizer.learning_rate", "{values, boundaries}"),
        (lambda c: c["temperature"].update(ramp_steps=0), "temperature.ramp_steps", "expected an integer >= 1"),
        (
            lambda c: c.update(temperature={"schedule": "log_linear_kelvin", "begin": 50, "finish": 50}),
            "temperature.finish",
            "must be after begin",
        ),
        (lambda c: c["temperature"].update(end_kelvin=0.0), "temperature.end_kelvin", "positive"),
        (lambda c: c.update(evaluation={"kelvin": -3.0}), "evaluation.kelvin", "positive"),
        (lambda c: c.update(evaluation={"nk": [0]}), "evaluation.nk", "positive integer"),
        (lambda c: c.update(evaluation={"temperature": 3}), "evaluation.temperature", "allowed: beta, kelvin, nk"),
    ],
)
def test_each_problem_is_one_error_naming_the_dotted_key(change, key, message):
    raw = _minimal()
    change(raw)
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "my.toml")
    assert str(info.value).startswith(f"my.toml: {key}: ")
    assert message in str(info.value)
    assert info.value.key == key


def test_photocurrent_keys_are_checked_with_the_photocurrent_observable():
    raw = {**_minimal(), "objective": {"observable": "photocurrent", "filling": 0.5}}
    for key, bad, message in (
        ("spectrum", "moon", "expected one of blackbody5500"),
        ("direction", "w", "expected one of x, y, z"),
        ("tau", -1.0, "expected a non-negative relaxation time"),
        ("sc_eta", -0.1, "expected a non-negative energy"),
        ("gap_weight", -1, "expected a non-negative number"),
    ):
        broken = copy.deepcopy(raw)
        broken["objective"][key] = bad
        with pytest.raises(ConfigError, match=f"^pv: objective.{key}: {message}"):
            parse_config(broken, "pv")


def test_not_a_table_at_the_top():
    with pytest.raises(ConfigError, match=r"^x.json: \(top level\): expected a table"):
        parse_config([1, 2], "x.json")


def test_every_preset_parses_and_round_trips_its_mapping():
    for name, preset in PRESETS.items():
        cfg = validate_config(copy.deepcopy(preset), name)
        assert isinstance(cfg, DesignConfig) and cfg.raw == preset
        assert json.dumps(cfg.raw, sort_keys=True) == json.dumps(preset, sort_keys=True)


def test_a_new_section_is_one_dataclass_and_one_field():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Perturbations:
        strength: float = option(0.0, NON_NEGATIVE)
        label: str = option("none", lambda x: str(x))

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Extended(DesignConfig):
        perturbations: Perturbations = section(Perturbations)

    assert parse_table(Extended, _minimal()).perturbations == Perturbations()
    cfg = parse_table(Extended, {**_minimal(), "perturbations": {"strength": 0.3}})
    assert cfg.perturbations.strength == 0.3 and cfg.steps == 100
    with pytest.raises(ConfigError, match=r"^perturbations\.strength: expected a non-negative number"):
        parse_table(Extended, {**_minimal(), "perturbations": {"strength": -1}})
    with pytest.raises(ConfigError, match=r"^perturbations\.size: unknown key; allowed: label, strength"):
        parse_table(Extended, {**_minimal(), "perturbations": {"size": 1}})


def test_a_new_observable_is_one_registry_entry(monkeypatch):
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class ToyOptions:
        width: float = option(1.0, NON_NEGATIVE)

    monkeypatch.setitem(OBSERVABLES, "toy", Observable("minimize", ToyOptions))
    cfg = parse_config({**_minimal(), "objective": {"observable": "toy", "mu": 0.1, "width": 2}})
    assert cfg.objective.goal == "minimize" and cfg.objective.options == ToyOptions(width=2.0)
    with pytest.raises(ConfigError, match="objective.width: only for observable = toy"):
        parse_config(_minimal(width=2))
    with pytest.raises(ConfigError, match="objective.tau: only for observable = photocurrent"):
        parse_config({**_minimal(), "objective": {"observable": "toy", "mu": 0.1, "tau": 1e-13}})


def test_every_configurable_observable_has_an_objective_path():
    assert set(OBJECTIVE_PATHS) == set(OBSERVABLES)


def test_a_sweep_point_is_parsed_again_after_editing_the_mapping():
    from hamdesign.ensemble import set_dotted

    base = copy.deepcopy(PRESETS["haldane"])
    point = set_dotted(base, "optimizer.learning_rate", 0.05)
    assert validate_config(point, "--sweep p").optimizer.learning_rate == LearningRate(values=(0.05,))
    with pytest.raises(ConfigError, match="^--sweep p: temperature.ramp_steps: "):
        validate_config(set_dotted(base, "temperature.ramp_steps", 0.5), "--sweep p")


def test_design_run_takes_a_mapping_or_a_parsed_config(numpy_backend):
    raw = copy.deepcopy(PRESETS["haldane"])
    raw.update(kmesh=[6, 6], evaluation={"beta": 50.0, "nk": 6})
    from_raw, from_config = DesignRun(raw, label="h"), DesignRun(parse_config(raw), label="h")
    assert from_raw.identity(0) == from_config.identity(0) and from_raw.cfg == raw
    assert from_raw.evaluation_beta() == 50.0 and from_raw.evaluation_nk() == 6
    with pytest.raises(ConfigError, match=r"^tiny: steps: "):
        DesignRun({**raw, "steps": 0}, label="tiny")


def test_kelvin_needs_a_model_with_an_energy_unit_and_sets_the_hall_evaluation(numpy_backend):
    from hamdesign.units import kelvin_to_energy

    hall = {**_minimal(), "kmesh": 6, "evaluation": {"kelvin": 300.0, "beta": 7.0}}
    with pytest.raises(ConfigError, match=r"^h: evaluation.kelvin: .*unit 't1'"):
        DesignRun(hall, label="h")  # haldane_general: energies in units of t1
    schedule = {**_minimal(), "temperature": {"schedule": "log_linear_kelvin"}}
    with pytest.raises(ConfigError, match=r"^h: temperature.schedule: .*unit 't1'"):
        DesignRun(schedule, label="h")
    # kelvin wins over beta, for σ_xy as for the photocurrent (it used to be read for photocurrents only)
    run = DesignRun({**hall, "model": {"name": "hbn"}})
    beta = 1.0 / kelvin_to_energy(300.0, "eV")
    assert run.evaluation_beta() == pytest.approx(beta)
    assert run.evaluate(run.initial_theta(0))["beta"] == pytest.approx(beta)


def test_spin_textures_are_reported_for_models_with_classical_spins():
    from hamdesign.models import haldane, kondo_chain, spin_sites

    assert spin_sites(kondo_chain(5)) == 5 and spin_sites(haldane()) == 0
    raw = copy.deepcopy(PRESETS["photovoltaic"])
    raw.update(kmesh=[4], evaluation={"kelvin": 300.0, "nk": 4})
    run = DesignRun(raw)
    assert run.config.objective.options.interband() == {"sc_eta": 0.0}
    ev = run.evaluate(run.initial_theta(0))
    assert np.asarray(ev["spins"]).shape == (12, 3)
    assert {"net_moment", "scalar_chirality", "cone_angle_deg", "current_density"} <= set(ev)
