"""Result tables against hand-computed values."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from negdl.results import (
    comparison_table,
    machine_description,
    markdown_table,
    mean_std,
    write_csv,
)


def test_mean_std_and_markdown_table(tmp_path: Path) -> None:
    assert mean_std([1.0]) == "1.00"
    assert mean_std([1.0, 2.0, 3.0]) == "2.00 ± 1.00"  # sample std
    assert mean_std([1.0, 2.0, 3.0], digits=0) == "2 ± 1"
    assert mean_std([]) == "-"
    # A zero is 0.00, however it was reached.
    assert mean_std([-0.0]) == "0.00" and mean_std([-0.001, -0.001]) == "0.00 ± 0.00"
    assert mean_std([-0.01]) == "-0.01"
    rows = [
        {"set": "full", "mode": "SN", "acc": 99.0},
        {"set": "full", "mode": "SN", "acc": 98.0},
        {"set": "full", "mode": "NR", "acc": 97.0},
        {"set": "cut", "mode": "SN", "acc": 50.0},
    ]
    assert markdown_table(rows, "set", "mode", "acc").splitlines() == [
        "| set | SN | NR |",
        "| --- | ---: | ---: |",
        "| full | 98.50 ± 0.71 | 97.00 |",
        "| cut | 50.00 |  |",
    ]
    path = write_csv(rows, tmp_path / "out" / "r.csv")
    with open(path) as handle:
        assert list(csv.DictReader(handle))[3] == {"set": "cut", "mode": "SN", "acc": "50.0"}
    with pytest.raises(ValueError, match="no rows"):
        write_csv([], tmp_path / "empty.csv")
    # A row may lack keys a later row has (the bench's baselines before a trained agent).
    path = write_csv([{"algo": "random"}, {"algo": "dqn", "train_collisions": 3}], path)
    with open(path) as handle:
        assert handle.read().splitlines() == ["algo,train_collisions", "random,", "dqn,3"]
    assert "torch" in machine_description(torch.device("cpu"))


def test_comparison_table_puts_our_mean_next_to_the_source() -> None:
    rows = [
        {"test_set": "full", "mode": "SN", "accuracy": 99.0},
        {"test_set": "full", "mode": "SN", "accuracy": 98.0},
        {"test_set": "cut", "mode": "NR", "accuracy": 50.0},
    ]
    source = {"full": {"SN": 99.13, "ONN": 98.9}, "cut": {"NR": 56.07}}
    lines = comparison_table(rows, source, "test_set", "mode").splitlines()
    assert lines[0] == "| test set | mode | source | ours (mean) | difference |"
    assert lines[2:] == [
        "| full | SN | 99.13 | 98.50 | -0.63 |",
        "| cut | NR | 56.07 | 50.00 | -6.07 |",
    ]
