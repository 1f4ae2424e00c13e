"""Parameter rules: the same parser for flags and fields, with messages that name the rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steplr_tui.runfolder.params import SPECS, FieldError, TrainConfig, parse_values

NASTY = [
    "",
    " ",
    "abc",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e999",
    "-1e999",
    "-0",
    "0",
    "1_000",
    "١٢",
    "0x10",
    "1e",
    ".",
    "--1",
    "+",
    "1,5",
    "½",
    "∞",
    "9" * 500,
    "\x00",
    "1 2",
    "🙂",
]


def test_defaults_are_the_reference_run():
    c = TrainConfig()
    assert (c.lr, c.step_size, c.gamma, c.epochs, c.batch_size, c.optimizer) == (
        0.001,
        2,
        0.1,
        5,
        64,
        "adam",
    )
    assert c.validated() is c


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("lr", "1e-3", 0.001),
        ("lr", " 0.5 ", 0.5),
        ("gamma", "1", 1.0),
        ("step_size", "1", 1),
        ("epochs", "1000", 1000),
        ("batch_size", "60000", 60000),
        ("momentum", "0", 0.0),
        ("optimizer", "SGD", "sgd"),
        ("device", "cuda", "cuda"),
        ("dataset", "sample", "sample"),
    ],
)
def test_valid_values_parse(name, text, value):
    assert SPECS[name].parse(text) == value


@pytest.mark.parametrize(
    ("name", "text", "rule"),
    [
        ("lr", "0", "a number in (0, 1000]"),
        ("lr", "-0", "a number in (0, 1000]"),
        ("lr", "1e300", "a number in (0, 1000]"),
        ("gamma", "0", "a number in (0, 1]"),
        ("gamma", "1.5", "a number in (0, 1]"),
        ("momentum", "1", "a number in [0, 1)"),
        ("epochs", "0", "a whole number from 1 to 1000"),
        ("epochs", "1001", "a whole number from 1 to 1000"),
        ("epochs", "2.5", "a whole number from 1 to 1000"),
        ("batch_size", "60001", "a whole number from 1 to 60000"),
        ("step_size", "0", "a whole number from 1"),
        ("optimizer", "rmsprop", "one of adam, sgd"),
    ],
)
def test_invalid_values_name_field_and_rule(name, text, rule):
    with pytest.raises(FieldError) as info:
        SPECS[name].parse(text)
    message = str(info.value)
    assert message.startswith(SPECS[name].label)
    assert rule in message


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("name", list(SPECS))
def test_nasty_text_is_refused_or_valid(name, text):
    _check_parse(name, text)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(list(SPECS)), text=st.text(max_size=60))
def test_random_text_never_crashes(name, text):
    _check_parse(name, text)


def _check_parse(name, text):
    spec = SPECS[name]
    try:
        value = spec.parse(text)
    except FieldError as exc:
        assert str(exc).startswith(spec.label)
        assert spec.rule in str(exc) or "empty" in str(exc) or "too long" in str(exc)
        return
    # Whatever was accepted obeys the rule.
    TrainConfig().with_values(**{name: value}).validated()


def test_parse_values_collects_every_error():
    values, errors = parse_values({"lr": "abc", "epochs": "7", "gamma": "2"})
    assert values == {"epochs": 7}
    assert set(errors) == {"lr", "gamma"}


def test_flag_name_in_messages():
    with pytest.raises(FieldError, match=r"^--batch-size must be a whole number from 1 to 60000"):
        SPECS["batch_size"].parse("0", who="--batch-size")


def test_validated_rejects_values_set_from_code():
    for bad in (
        {"lr": float("nan")},
        {"epochs": 0},
        {"gamma": 2.0},
        {"optimizer": "lbfgs"},
        {"step_size": 1.5},
        {"batch_size": True},
    ):
        with pytest.raises(FieldError):
            TrainConfig().with_values(**bad).validated()


@pytest.mark.parametrize(
    ("name", "start", "direction", "steps", "expected"),
    [
        ("lr", "0.001", 1, 1, "0.002"),
        ("lr", "0.009", 1, 1, "0.01"),
        ("lr", "0.001", -1, 1, "0.0009"),
        ("lr", "0.001", 1, 9, "0.01"),
        ("gamma", "0.9", 1, 1, "1.0"),
        ("epochs", "5", 1, 3, "8"),
        ("step_size", "1", -1, 1, "1"),  # no valid step below 1: stays
        ("epochs", "1000", 1, 1, "1000"),
        ("momentum", "0.0", 1, 1, "0.1"),
    ],
)
def test_nudge(name, start, direction, steps, expected):
    text = start
    for _ in range(steps):
        text = SPECS[name].nudge(text, direction) or text
    assert text == expected


def test_nudge_of_invalid_text_does_nothing():
    assert SPECS["lr"].nudge("abc", 1) is None
    assert SPECS["optimizer"].nudge("adam", 1) is None
