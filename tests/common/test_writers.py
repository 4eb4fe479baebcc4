"""TensorBoard writers: one per run name, folder-safe names, closed together."""

from __future__ import annotations

from pathlib import Path

from negdl.writers import TensorBoardWriters


def test_one_writer_per_name_in_a_safe_folder(tmp_path: Path) -> None:
    with TensorBoardWriters(tmp_path / "runs") as writers:
        first = writers("TSN>TSN-N")
        assert writers("TSN>TSN-N") is first
        first.add_scalar("eval/x", 1.0, 0)
        writers("pml conventions").add_scalar("eval/x", 2.0, 0)
    assert writers.writers == {}
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == [
        "TSN_TSN-N",
        "pml_conventions",
    ]
    assert list((tmp_path / "runs" / "TSN_TSN-N").glob("events.out.tfevents.*"))
