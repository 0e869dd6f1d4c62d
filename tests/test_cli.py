"""The command line: real subprocesses, one-line errors with exit status 2, files written."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env_dir: Path | None = None):
    import os
    env = dict(os.environ)
    if env_dir is not None:
        env["CRYSTAL_DIFFUSION_CHECKPOINTS"] = str(env_dir)
    return subprocess.run([sys.executable, "-m", "diffusion", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)


def assert_one_line_error(result, fragment: str):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment.lower() in lines[0].lower(), lines[0]


def test_sample_writes_cifs_and_trajectories(checkpoint_dir, tmp_path):
    from pymatgen.core import Structure

    out = tmp_path / "out"
    r = cli("sample", "--checkpoint", "tiny_csp", "--composition", "SrTiO3", "--num-samples", "2", "--steps", "10",
            "--sampler", "pc", "--out", str(out), "--trajectory", env_dir=checkpoint_dir)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["sample_000.cif", "sample_000.extxyz", "sample_001.cif",
                                                     "sample_001.extxyz"]
    s = Structure.from_file(out / "sample_000.cif")
    assert s.composition.reduced_formula == "SrTiO3"
    assert (out / "sample_000.extxyz").read_text().count("Lattice=") == 11


def test_sample_from_csv_and_gen(checkpoint_dir, tmp_path, perov_rows):
    r = cli("sample", "--checkpoint", str(checkpoint_dir / "tiny_csp.pt"), "--from-csv", str(perov_rows),
            "--limit", "3", "--steps", "5", "--out", str(tmp_path / "csv"))
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "csv").glob("*.cif"))) == 3
    r = cli("sample", "--checkpoint", "tiny_gen", "--num-atoms", "5", "--num-samples", "2", "--steps", "5",
            "--out", str(tmp_path / "gen"), env_dir=checkpoint_dir)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "gen").glob("*.cif"))) == 2


@pytest.mark.parametrize("args,fragment", [
    (("--composition", "Xx2"), "unknown element"),
    (("--composition", "Sr(TiO3"), "unbalanced"),
    (("--composition", "sRtIo3"), "cannot read"),
    (("--composition", "C101"), "more than 100"),
    (("--composition", "Sr0Ti"), "at least one"),
    (("--composition", "SrTiO3", "--steps", "0"), ">= 1"),
    (("--composition", "SrTiO3", "--steps", "5000"), "steps"),
    (("--composition", "SrTiO3", "--space-group", "225"), "space-group"),
    (("--composition", "SrTiO3", "--guidance", "nan"), "finite"),
    (("--composition", "SrTiO3", "--device", "cuda"), "cuda"),
    (("--num-atoms", "5"), "composition"),
])
def test_sample_bad_input(checkpoint_dir, tmp_path, args, fragment):
    if "cuda" in args:
        import torch
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
    r = cli("sample", "--checkpoint", "tiny_csp", *args, "--out", str(tmp_path), env_dir=checkpoint_dir)
    assert_one_line_error(r, fragment)


def test_gen_model_refuses_composition_and_bad_counts(checkpoint_dir, tmp_path):
    assert_one_line_error(cli("sample", "--checkpoint", "tiny_gen", "--composition", "SrTiO3", "--out", str(tmp_path),
                              env_dir=checkpoint_dir), "ab initio")
    assert_one_line_error(cli("sample", "--checkpoint", "tiny_gen", "--num-atoms", "0", "--out", str(tmp_path),
                              env_dir=checkpoint_dir), ">= 1")
    assert_one_line_error(cli("sample", "--checkpoint", "tiny_gen", "--num-atoms", "101", "--out", str(tmp_path),
                              env_dir=checkpoint_dir), "at most 100")
    assert_one_line_error(cli("sample", "--checkpoint", "tiny_gen", "--num-atoms", "5", "--property", "1.0",
                              "--out", str(tmp_path), env_dir=checkpoint_dir), "property condition")


def test_missing_and_corrupt_checkpoints(tmp_path, checkpoint_dir):
    assert_one_line_error(cli("sample", "--checkpoint", "nope", "--composition", "NaCl", "--out", str(tmp_path),
                              env_dir=checkpoint_dir), "no checkpoint named")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    assert_one_line_error(cli("sample", "--checkpoint", str(corrupt), "--composition", "NaCl", "--out", str(tmp_path)),
                          "corrupt")


def test_train_bad_input(tmp_path, perov_rows):
    assert_one_line_error(cli("train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x.pt")),
                          "not found")
    assert_one_line_error(cli("train", "--data", str(perov_rows), "--out", str(tmp_path / "x.pt"), "--property",
                              "band_gap"), "no property column")


def test_train_resumes_after_interruption(tmp_path, perov_rows):
    base = ("train", "--data", str(perov_rows), "--out", str(tmp_path / "m.pt"), "--hidden", "16", "--layers", "1",
            "--frequencies", "4", "--num-steps", "20", "--batch-size", "8", "--checkpoint-every", "5", "--quiet",
            "--run-dir", str(tmp_path / "run"))
    assert cli(*base, "--max-steps", "10").returncode == 0
    r = cli(*base, "--max-steps", "15")
    assert r.returncode == 0 and "step 15" in r.stdout
    assert "resuming" in r.stderr
    import json
    assert json.loads((tmp_path / "m.json").read_text())["steps"] == 15


def test_evaluate_writes_json(checkpoint_dir, tmp_path):
    import json
    out = tmp_path / "metrics.json"
    r = cli("evaluate", "--checkpoint", "tiny_csp", "--limit", "3", "--steps", "5", "--json", str(out),
            env_dir=checkpoint_dir)
    assert r.returncode == 0, r.stderr
    metrics = json.loads(out.read_text())["metrics"]
    assert 1 <= metrics["n"] <= 3 and 0.0 <= metrics["validity"] <= 1.0
    assert metrics["match_rate"] is None or 0.0 <= metrics["match_rate"] <= 1.0


def test_evaluate_records_the_pc_step_size_it_used(checkpoint_dir, tmp_path):
    """A pc run names its corrector step size (the model's own unless given) in the results and the card key."""
    import json
    import shutil
    for suffix in (".pt", ".json"):
        shutil.copy(checkpoint_dir / f"tiny_csp{suffix}", tmp_path / f"mine{suffix}")
    runs = {}
    for extra in ((), ("--step-lr", "2e-05")):
        out = tmp_path / f"metrics{len(extra)}.json"
        r = cli("evaluate", "--checkpoint", "mine", "--limit", "2", "--sampler", "pc", "--steps", "3", "--json",
                str(out), "--update-card", *extra, env_dir=tmp_path)
        assert r.returncode == 0, r.stderr
        runs[len(extra)] = json.loads(out.read_text())
    assert runs[0]["step_lr"] == 5e-7 and runs[2]["step_lr"] == 2e-5
    stored = json.loads((tmp_path / "mine.json").read_text())["metrics"]
    assert {"pc_3_sg-none_k1_lr5e-07", "pc_3_sg-none_k1_lr2e-05"} <= set(stored)


def test_download_failure_is_one_line(monkeypatch, tmp_path, capsys):
    import urllib.request

    from diffusion.cli import main

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["download", "perov_5", "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not download" in err[0]
    assert not list(tmp_path.rglob("*.csv")), "no partial files left behind"


def test_training_record_keeps_each_machine_and_batch_size(tmp_path, perov_rows):
    """A run resumed with another batch size (say on a GPU) adds a segment; epochs count each segment's batch."""
    import json
    base = ("train", "--data", str(perov_rows), "--out", str(tmp_path / "m.pt"), "--hidden", "16", "--layers", "1",
            "--frequencies", "4", "--num-steps", "20", "--checkpoint-every", "5", "--quiet",
            "--run-dir", str(tmp_path / "run"))
    assert cli(*base, "--batch-size", "8", "--max-steps", "10").returncode == 0
    assert cli(*base, "--batch-size", "8", "--max-steps", "15").returncode == 0
    card = json.loads((tmp_path / "m.json").read_text())
    assert [(s["from_step"], s["to_step"], s["batch_size"]) for s in card["segments"]] == [(0, 15, 8)]
    assert cli(*base, "--batch-size", "4", "--max-steps", "20").returncode == 0
    card = json.loads((tmp_path / "m.json").read_text())
    assert [(s["from_step"], s["to_step"], s["batch_size"]) for s in card["segments"]] == [(0, 15, 8), (15, 20, 4)]
    assert card["epochs"] == round((15 * 8 + 5 * 4) / card["split"]["train"], 2)


def test_hardware_summary_names_every_machine():
    from diffusion.checkpoints import hardware_summary
    one = {"hardware": "cpu box", "segments": [{"hardware": "cpu box", "from_step": 0, "to_step": 5}]}
    assert hardware_summary({"hardware": "cpu box"}) == "cpu box"
    assert hardware_summary(one) == "cpu box"
    two = {"hardware": "gpu box", "segments": [
        {"hardware": "cpu box", "from_step": 0, "to_step": 5, "batch_size": 8, "wall_seconds": 1.0},
        {"hardware": "gpu box", "from_step": 5, "to_step": 9, "batch_size": 32, "wall_seconds": 2.0}]}
    assert "cpu box (steps 0-5" in hardware_summary(two) and "gpu box (steps 5-9" in hardware_summary(two)


def test_space_group_drop_is_checked_and_recorded(tmp_path, perov_rows):
    import json
    assert_one_line_error(cli("train", "--data", str(perov_rows), "--out", str(tmp_path / "x.pt"),
                              "--space-group-drop", "1.5"), "probability")
    r = cli("train", "--data", str(perov_rows), "--out", str(tmp_path / "m.pt"), "--hidden", "16", "--layers", "1",
            "--frequencies", "4", "--num-steps", "20", "--batch-size", "8", "--max-steps", "4", "--val-every", "2",
            "--space-group", "--space-group-drop", "0.5", "--quiet", "--run-dir", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["train_config"]["space_group_drop"] == 0.5
    # both validation losses are logged: with the conditions, and from the composition alone
    assert all(set(h) >= {"val_loss", "val_loss_unconditioned"} for h in card["history"])


def test_space_group_drop_hides_only_the_space_group():
    """space_group_drop=1 trains exactly the composition-only task, whatever the property drop."""
    import torch
    from diffusion.crystal import Crystal, CrystalBatch
    from diffusion.model import DenoiserConfig
    from diffusion.crystal_diffusion import CrystalDiffusion, Normalization, ProcessConfig
    from diffusion.corruption import LatticeStats

    crystals = [Crystal(lattice=torch.eye(3) * 4.0, frac_coords=torch.rand(2, 3, generator=torch.Generator().manual_seed(i)),
                        atomic_numbers=torch.tensor([11, 17]), space_group=225) for i in range(3)]
    batch = CrystalBatch.from_crystals(crystals)
    lattices = torch.stack([c.lattice for c in crystals])
    norm = Normalization(lattice=LatticeStats.fit(lattices, torch.tensor([2, 2, 2])), elements=(11, 17), max_atoms=2,
                         num_atoms_counts=(0, 0, 3))
    model = CrystalDiffusion(DenoiserConfig(hidden=16, layers=1, frequencies=4, use_space_group=True),
                             ProcessConfig(num_steps=20, use_space_group=True), norm)
    hidden = model.loss(batch, torch.Generator().manual_seed(0), drop_probability=0.0, space_group_drop=1.0).total
    given = model.loss(batch, torch.Generator().manual_seed(0), drop_probability=0.0, space_group_drop=0.0).total
    batch.space_group.zero_()
    none = model.loss(batch, torch.Generator().manual_seed(0), drop_probability=0.0, space_group_drop=0.0).total
    assert torch.equal(hidden, none) and not torch.equal(hidden, given)


def test_weights_trained_elsewhere_win_over_an_older_training_state(tmp_path, perov_rows):
    """A checkpoint dropped in from another machine (further trained) is resumed, not the stale local state."""
    import json
    base = ("train", "--data", str(perov_rows), "--out", str(tmp_path / "m.pt"), "--hidden", "16", "--layers", "1",
            "--frequencies", "4", "--num-steps", "20", "--batch-size", "8", "--checkpoint-every", "5", "--quiet")
    assert cli(*base, "--max-steps", "5", "--run-dir", str(tmp_path / "here")).returncode == 0
    assert cli(*base, "--max-steps", "12", "--run-dir", str(tmp_path / "elsewhere")).returncode == 0
    r = cli(*base, "--max-steps", "14", "--run-dir", str(tmp_path / "here"))
    assert r.returncode == 0 and "older than" in r.stderr and "step 14" in r.stdout, r.stderr
    card = json.loads((tmp_path / "m.json").read_text())
    assert [(s["from_step"], s["to_step"]) for s in card["segments"]] == [(0, 14)]


def test_resume_ramps_lr_after_fresh_optimizer_and_honours_a_new_lr(tmp_path, perov_rows):
    """Shipped weights + fresh Adam: lr ramps up from lr/warmup; a resumed state takes the --lr asked for now."""
    import torch
    from diffusion.train import TrainConfig, train
    common = dict(data=(str(perov_rows),), out=str(tmp_path / "m.pt"), hidden=16, layers=1, frequencies=4,
                  num_steps=20, batch_size=8, checkpoint_every=5, val_every=100)
    train(TrainConfig(**common, max_steps=5, run_dir=str(tmp_path / "a")), progress=False)
    seen = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = spy
    try:
        # a run dir without state: resumes the shipped weights with a fresh optimizer
        train(TrainConfig(**common, max_steps=9, lr=1e-3, warmup_steps=4, run_dir=str(tmp_path / "b")), progress=False)
        assert seen == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
        seen.clear()
        # its state (saved at step 9) resumes with the lr given now
        train(TrainConfig(**common, max_steps=11, lr=3e-4, warmup_steps=4, run_dir=str(tmp_path / "b")), progress=False)
        assert seen == pytest.approx([3e-4, 3e-4])
    finally:
        torch.optim.Adam.step = original
