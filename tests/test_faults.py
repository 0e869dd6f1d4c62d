"""Faults injected into real processes: training killed mid-run, stopped politely, a broken cache.

Whatever happens, the checkpoint on disk is a complete one and the same command resumes.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _start_training(data: Path, folder: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "diffusion", "train", "--data", str(data), "--out", str(folder / "m.pt"),
           "--hidden", "16", "--layers", "1", "--frequencies", "4", "--num-steps", "20", "--batch-size", "8",
           "--max-steps", "100000", "--checkpoint-every", "3", "--val-every", "1000", "--quiet",
           "--run-dir", str(folder / "run"), "--threads", "1"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _wait_for_checkpoints(folder: Path, process: subprocess.Popen, minimum_step: int = 9) -> None:
    deadline = time.time() + 180
    while time.time() < deadline:
        card = folder / "m.json"
        if card.is_file():
            try:
                if json.loads(card.read_text())["steps"] >= minimum_step:
                    return
            except (ValueError, KeyError):
                pass   # caught between two writes of the card; the next poll reads a whole one
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    process.kill()
    pytest.fail("training wrote no checkpoint in 180 s")


def _resume(data: Path, folder: Path, steps: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "diffusion", "train", "--data", str(data), "--out", str(folder / "m.pt"),
           "--hidden", "16", "--layers", "1", "--frequencies", "4", "--num-steps", "20", "--batch-size", "8",
           "--max-steps", str(steps), "--checkpoint-every", "3", "--quiet", "--run-dir", str(folder / "run")]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_training_killed_mid_run_leaves_a_loadable_checkpoint_and_resumes(fault, perov_rows, tmp_path):
    from diffusion.checkpoints import load_model, read_checkpoint

    process = _start_training(perov_rows, tmp_path)
    _wait_for_checkpoints(tmp_path, process)
    process.send_signal(fault)
    out, err = process.communicate(timeout=120)
    if fault == signal.SIGTERM:
        assert process.returncode == 0 and "Traceback" not in err, err   # stops politely, saving first
    else:
        assert process.returncode == -signal.SIGKILL
    load_model(tmp_path / "m.pt")                           # never half-written
    state_step = int(read_checkpoint(tmp_path / "m.pt")["card"]["steps"])
    assert not list(tmp_path.glob(".m.pt.tmp*")) or fault == signal.SIGKILL
    resumed = _resume(perov_rows, tmp_path, state_step + 4)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr
    assert json.loads((tmp_path / "m.json").read_text())["steps"] == state_step + 4


def test_a_corrupt_dataset_cache_is_rebuilt(perov_rows, tmp_path, monkeypatch):
    from diffusion.data import load_csv

    monkeypatch.setenv("CRYSTAL_DIFFUSION_CACHE", str(tmp_path))
    first = load_csv(perov_rows)
    (cache,) = list(tmp_path.glob("*.pt"))
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 3])   # a crash in the middle of a write
    again = load_csv(perov_rows)
    assert [c.material_id for c in again.crystals] == [c.material_id for c in first.crystals]
    assert load_csv(perov_rows).crystals[0].num_atoms == first.crystals[0].num_atoms
