"""benchmarks/corrector_step.py: the sweep that sets a checkpoint's pc step size from its validation split."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_sweep_stores_the_best_step_size_and_its_rows(checkpoint_dir, tmp_path):
    for suffix in (".pt", ".json"):
        shutil.copy(checkpoint_dir / f"tiny_csp{suffix}", tmp_path / f"mine{suffix}")
    results = tmp_path / "rows.json"
    env = {**os.environ, "CRYSTAL_DIFFUSION_CHECKPOINTS": str(tmp_path)}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "corrector_step.py"), "--checkpoint", "mine",
                        "--limit", "2", "--steps", "3", "--values", "2e-5", "4e-5", "--threads", "1", "--apply",
                        "--results", str(results)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = json.loads(results.read_text())
    assert [(row["sampler"], row["step_lr"]) for row in rows] == [("ddim", None), ("pc", 2e-5), ("pc", 4e-5)]
    best = max(rows[1:], key=lambda row: (row["match_rate"] or 0.0, -(row["rmse"] or 1.0)))["step_lr"]
    card = json.loads((tmp_path / "mine.json").read_text())
    assert card["process"]["corrector_step_lr"] == best
    assert card["corrector_step_lr_choice"]["rows"][1]["step_lr"] == 2e-5
    assert {"ddim_3_sg-none_k1", "pc_3_sg-none_k1_lr2e-05", "pc_3_sg-none_k1_lr4e-05"} <= set(card["metrics"])
    from diffusion.checkpoints import load_model
    assert load_model(tmp_path / "mine.pt").process.corrector_step_lr == best
    assert "| pc | 2e-05 |" in r.stdout
