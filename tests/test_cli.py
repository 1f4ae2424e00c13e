"""Flags: one per parameter, one-line errors with exit 2, and the headless output format."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from steplr_tui.cli.options import build_parser, parse_options
from steplr_tui.runfolder.params import SPECS, TrainConfig

EPOCH_LINE = re.compile(r"^Epoch (\d+), Loss: \d+\.\d{4}, LR: \d+\.\d{6}$")
ACC_LINE = re.compile(r"^Test Accuracy: (\d+\.\d{2})%$")


def test_help_lists_every_parameter_flag():
    text = build_parser().format_help()
    for spec in SPECS.values():
        assert spec.flag in text
    for flag in ("--headless", "--start", "--data-dir", "--no-download"):
        assert flag in text


def test_flags_fill_the_config(tmp_path):
    options = parse_options(
        [
            "--lr",
            "0.01",
            "--step-size",
            "3",
            "--gamma",
            "0.5",
            "--epochs",
            "7",
            "--batch-size",
            "128",
            "--optimizer",
            "SGD",
            "--momentum",
            "0.8",
            "--seed",
            "42",
            "--device",
            "cpu",
            "--dataset",
            "sample",
            "--data-dir",
            str(tmp_path),
            "--start",
        ]
    )
    assert options.config == TrainConfig(
        lr=0.01,
        step_size=3,
        gamma=0.5,
        epochs=7,
        batch_size=128,
        optimizer="sgd",
        momentum=0.8,
        seed=42,
        device="cpu",
        dataset="sample",
        data_dir=str(tmp_path),
    )
    assert options.start and not options.headless


def test_no_flags_is_the_reference_run():
    assert parse_options([]).config == TrainConfig()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--gamma", "2"], "--gamma must be a number in (0, 1]"),
        (["--epochs", "0"], "--epochs must be a whole number from 1 to 1000"),
        (["--batch-size", "abc"], "--batch-size must be a whole number from 1 to 60000"),
        (["--lr", "nan"], "--lr must be a number in (0, 1000]"),
        (["--optimizer", "rmsprop"], "--optimizer must be one of adam, sgd"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--lr"], "--lr"),
        (["--data-dir", " "], "--data-dir is empty"),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv, needle, capsys):
    with pytest.raises(SystemExit) as info:
        parse_options(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("steplr-tui: ")
    assert needle in err


def test_a_data_dir_that_does_not_exist_is_an_error_with_the_fix(tmp_path, capsys):
    typo = tmp_path / "mnsit"
    for argv in (
        ["--data-dir", str(typo)],
        ["sweep", "--gamma", "0.1:0.9", "--data-dir", str(typo)],
    ):
        if argv[0] == "sweep":
            from steplr_tui.cli.main import main

            assert main([*argv, "--runs-dir", str(tmp_path / "runs")]) == 2
        else:
            with pytest.raises(SystemExit) as info:
                parse_options(argv)
            assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert f"--data-dir {typo} does not exist" in err and f"mkdir -p {typo}" in err
    assert not (tmp_path / "runs" / "sweeps").exists()  # nothing made
    # An existing folder without MNIST keeps today's behaviour (download, else the sample).
    empty = tmp_path / "empty"
    empty.mkdir()
    assert parse_options(["--data-dir", str(empty)]).config.data_dir == str(empty)
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(SystemExit):
        parse_options(["--data-dir", str(file)])
    assert "is a file, not a folder" in capsys.readouterr().err


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(list(SPECS)), text=st.text(max_size=50))
@example(name="lr", text="--")  # argparse swallows a bare "--" value
def test_random_flag_values_never_crash(name, text):
    flag = SPECS[name].flag
    try:
        options = parse_options([f"{flag}={text}"])
    except SystemExit as exc:
        assert exc.code == 2
        return
    assert getattr(options.config, name) == SPECS[name].parse(text)


def _run(*args, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "steplr_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_bad_flag_in_a_real_process():
    result = _run("--step-size", "0")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "steplr-tui: --step-size must be a whole number from 1 to 1000000 (got '0')"
    ]


def test_headless_on_the_sample_prints_the_reference_format():
    result = _run("--headless", "--dataset", "sample", "--epochs", "2", "--batch-size", "256")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert [int(EPOCH_LINE.match(line).group(1)) for line in lines[0::2]] == [1, 2]
    assert all(ACC_LINE.match(line) for line in lines[1::2])
    assert lines[0].endswith("LR: 0.001000") and lines[2].endswith("LR: 0.001000")
    assert "MNIST sample" in result.stderr and "Traceback" not in result.stderr


def test_headless_runtime_failure_exits_1_without_traceback(tmp_path):
    result = _run(
        "--headless",
        "--dataset",
        "mnist",
        "--no-download",
        "--data-dir",
        str(tmp_path),
        "--epochs",
        "1",
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "run failed" in result.stderr and str(tmp_path) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_value_of_two_dashes_is_refused_by_name(capsys):
    for argv in (["--lr=--"], ["--runs-dir=--", "--gamma=--"]):
        with pytest.raises(SystemExit) as exc:
            parse_options(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "must be a number" in err and "(got '--')" in err


def test_a_closed_pipe_ends_a_listing_quietly(tmp_path):
    # `steplr-tui --list-runs | head -1`: the reader is gone before the listing is written.
    env = {**os.environ, "STEPLR_TUI_RUNS": str(tmp_path)}
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "steplr_tui", "--list-runs"],
            stdout=write,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert proc.returncode == 141
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr


@pytest.mark.parametrize("command", ["stop", "edit", "export"])
def test_a_command_without_its_run_says_what_to_give(command):
    proc = subprocess.run(
        [sys.executable, "-m", "steplr_tui", command], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"steplr-tui {command}: give a RUN: a run folder or a run name "
        "(steplr-tui --list-runs shows them)"
    )
