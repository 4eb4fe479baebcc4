"""negdl.interrupt: the first SIGINT/SIGTERM stops cleanly, the second aborts, handlers come back."""

from __future__ import annotations

import signal
import textwrap

import pytest

from negdl.interrupt import StopOnSignal, StopRequested

#: A long loop that writes each finished unit and runs each unit either with a safe point after
#: it ("check") or inside ``stop.raising()``; once stopped, it takes ``saving`` seconds to save.
TOY = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from negdl.interrupt import StopOnSignal

    out, mode, saving = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    done = 0
    with StopOnSignal("toy") as stop:
        for unit in range(10_000):
            if mode == "raising":
                with stop.raising():
                    time.sleep(0.02)
            else:
                time.sleep(0.02)
            done += 1
            out.with_suffix(".partial").write_text(str(done))
            os.replace(out.with_suffix(".partial"), out)  # whole or not at all, even if aborted
            if stop.requested:
                time.sleep(saving)  # a second signal lands here and aborts the save
            stop.check()
    if stop.requested:
        stop.exit(f"kept {done} units in {out}")
    """
)


@pytest.mark.parametrize(
    ("signals", "mode", "status", "said"),
    [
        ([signal.SIGINT], "check", 130, "toy: stopped by SIGINT: kept"),
        ([signal.SIGTERM], "raising", 143, "toy: stopped by SIGTERM: kept"),
        ([signal.SIGINT, signal.SIGINT], "check", 130, "toy: SIGINT again: aborting now"),
        ([signal.SIGTERM, signal.SIGINT], "check", 130, "toy: SIGINT again: aborting now"),
    ],
)
def test_signals_stop_cleanly_then_abort(tmp_path, interrupt_script, signals, mode, status, said):
    script = tmp_path / "toy.py"
    script.write_text(TOY)
    out = tmp_path / "units.txt"
    saving = "60" if len(signals) == 2 else "0"
    result = interrupt_script(
        str(script), str(out), mode, saving, ready=lambda: out.exists(), signals=signals
    )
    assert result.returncode == status, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert int(out.read_text()) >= 1
    if len(signals) == 1:
        assert f"kept {out.read_text()} units" in result.stderr


def test_handlers_come_back_and_raising_stops_at_once():
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    with StopOnSignal("test") as stop:
        assert signal.getsignal(signal.SIGINT) != before[signal.SIGINT]
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested and stop.signal_name == "SIGTERM" and stop.exit_status == 143
        with pytest.raises(StopRequested):
            with stop.raising():
                pass  # a request made before the block counts too
        stop.check()  # raises StopRequested, which the block swallows
        raise AssertionError("not reached")
    assert {number: signal.getsignal(number) for number in before} == before
    with pytest.raises(SystemExit) as exit_info:
        stop.exit("kept nothing")
    assert exit_info.value.code == 143
