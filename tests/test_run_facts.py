"""The facts a record keeps besides the parameters, one way for the built-in trainer and a
user's script alike (they had a copy each, which had begun to differ)."""

from __future__ import annotations

import json

import pytest

from steplr_tui.run.facts import distributed_facts
from steplr_tui.runfolder.reader import control_offset


@pytest.mark.parametrize(
    ("written", "offset"),
    [(120, 120), (0, 0), (True, 0), (-5, 0), ("12", 0), (1.5, 0), (None, 0)],
)
def test_a_launched_runs_control_offset_is_a_count_of_bytes_or_zero(tmp_path, written, offset):
    (tmp_path / "status.json").write_text(
        json.dumps({"status": "COMPLETED", "control_offset": written})
    )
    assert control_offset(tmp_path) == offset


def test_no_status_means_reading_control_from_its_start(tmp_path):
    assert control_offset(tmp_path) == 0
    (tmp_path / "status.json").write_text("[1, 2]")
    assert control_offset(tmp_path) == 0


def test_distributed_facts_say_the_batch_of_each_rank_and_of_all():
    assert distributed_facts(2, "gloo", 32) == {
        "world_size": 2,
        "backend": "gloo",
        "batch_size_per_rank": 32,
        "global_batch_size": 64,
    }
    unknown = distributed_facts(1, "", None)
    assert unknown["batch_size_per_rank"] is None and unknown["global_batch_size"] is None
    assert distributed_facts(1, "", True)["batch_size_per_rank"] is None
