"""The one config declaration drives parsing, validation, storage and CLI flags."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from tuigen import config as schema
from tuigen.config import ConfigError, knob
from tuigen.experiments import KINDS


@dataclass
class Toy:
    lr: float = knob(1e-3, "learning rate", gt=0)
    steps: int = knob(100, "steps", ge=1)
    dim_mults: tuple[int, ...] = knob((1, 2, 4), "width multipliers", ge=1)
    schedule: str = knob("linear", "beta schedule", choices=("linear", "cosine"))
    flip: bool = knob(False, "horizontal flip")


def test_values_are_parsed_to_the_declared_types():
    cfg = schema.build(Toy, {"lr": "3e-4", "steps": "1e3", "dim_mults": "1,2,4,8", "flip": "yes"})
    assert cfg == Toy(lr=3e-4, steps=1000, dim_mults=(1, 2, 4, 8), schedule="linear", flip=True)


@pytest.mark.parametrize("values, message", [
    ({"lr": "-1"}, "--lr must be > 0, got -1"),
    ({"steps": "0"}, "--steps must be >= 1, got 0"),
    ({"steps": "1.5"}, "--steps expects an integer, got '1.5'"),
    ({"schedule": "cosin"}, "--schedule must be one of linear, cosine; got cosin"),
    ({"dim_mults": "1,0"}, "--dim_mults must be >= 1"),
    ({"flip": "maybe"}, "--flip expects true or false"),
    ({"lrr": "1"}, "unknown option --lrr"),
])
def test_bad_values_name_the_flag_and_the_rule(values, message):
    with pytest.raises(ConfigError) as e:
        schema.build(Toy, values)
    assert message in str(e.value)


def test_stored_config_round_trips_and_tolerates_new_fields():
    cfg = schema.build(Toy, {"dim_mults": "1,2"})
    again = schema.from_json(Toy, schema.to_json(cfg))
    assert again == cfg and isinstance(again.dim_mults, tuple)
    old = '{"lr": 0.01}'  # written before `steps` etc. existed
    assert schema.from_json(Toy, old) == Toy(lr=0.01)


def test_base_config_is_overridden_not_reset():
    base = schema.build(Toy, {"lr": "0.5", "steps": "7"})
    assert schema.build(Toy, {"steps": "9"}, base=base) == Toy(lr=0.5, steps=9)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_knob_of_every_kind_becomes_a_flag_with_help(kind):
    cls = KINDS[kind].config
    p = argparse.ArgumentParser()
    schema.add_arguments(p, cls)
    flags = {a.option_strings[0]: a for a in p._actions if a.option_strings and a.dest.startswith("cfg__")}
    assert set(flags) == {"--" + k.name for k in schema.knobs(cls)}
    assert all(a.help and "default:" in a.help for a in flags.values())
    for demo in KINDS[kind].demo:  # shipped demo configs are valid
        schema.build(cls, demo)
