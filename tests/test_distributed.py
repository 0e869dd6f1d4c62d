"""DistributedDataParallel training: 2 gloo processes on CPU."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def torchrun(tmp_path, perov_rows, max_steps: int):
    env = {**os.environ, "CRYSTAL_DDP_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "diffusion", "train", "--data", str(perov_rows), "--out", str(tmp_path / "ddp.pt"),
           "--hidden", "16", "--layers", "1", "--frequencies", "4", "--num-steps", "20", "--batch-size", "8",
           "--max-steps", str(max_steps), "--checkpoint-every", "3", "--val-every", "3", "--quiet",
           "--run-dir", str(tmp_path / "run"), "--device", "cpu"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)


def test_two_gloo_ranks_agree_and_resume(tmp_path, perov_rows):
    first = torchrun(tmp_path, perov_rows, 4)
    assert first.returncode == 0, first.stderr[-2000:]
    sums = dict(re.findall(r"\[rank (\d)\] step 4 .*?weights checksum ([-+.e0-9]+)", first.stdout))
    assert set(sums) == {"0", "1"}, first.stdout
    assert sums["0"] == sums["1"], "ranks ended with different weights"
    assert (tmp_path / "ddp.pt").is_file() and (tmp_path / "run" / "state.pt").is_file()
    second = torchrun(tmp_path, perov_rows, 6)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from" in second.stderr
    assert re.search(r"\[rank 0\] step 6 ", second.stdout)
    sums = dict(re.findall(r"\[rank (\d)\] step 6 .*?weights checksum ([-+.e0-9]+)", second.stdout))
    assert sums["0"] == sums["1"]
