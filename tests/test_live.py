"""diffusion/live.py: the tiny live-training loop, its thread, its limits and the noise-prediction probe."""
from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest
import torch

from diffusion import generate
from diffusion.data import load_csv
from diffusion.live import (MAX_LIVE_CRYSTALS, MAX_LIVE_STEPS, LiveConfig, LiveTrainer, build_live_model,
                            composition_text, noise_prediction, train_live)

from conftest import PEROV_CSV

FAST = LiveConfig(steps=40, num_steps=50, hidden=32, layers=1, frequencies=8, lr=3e-3)


@pytest.fixture(scope="module")
def crystals():
    return list(load_csv(PEROV_CSV).crystals[:4])


def test_training_lowers_the_loss_and_reports_every_step(crystals):
    config = LiveConfig(steps=150, num_steps=50, hidden=32, layers=1, frequencies=8, lr=3e-3)
    model = build_live_model(crystals, config)
    before = [p.detach().clone() for p in model.parameters()]
    points = []
    reason = train_live(model, crystals, config, on_step=points.append)
    assert reason == "finished"
    assert [p.step for p in points] == list(range(1, 151))
    first, last = sum(p.total for p in points[:30]) / 30, sum(p.total for p in points[-30:]) / 30
    assert last < 0.8 * first, (first, last)
    assert all(abs(p.total - p.lattice - p.coords) < 1e-4 for p in points), "CSP: total = lattice + coordinates"
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_same_seed_same_model_and_losses(crystals):
    runs = []
    for _ in range(2):
        model = build_live_model(crystals, FAST)
        points = []
        train_live(model, crystals, LiveConfig(**{**FAST.__dict__, "steps": 5}), on_step=points.append)
        runs.append([p.total for p in points])
    assert runs[0] == runs[1]


def test_stop_flag_and_time_limit(crystals):
    model = build_live_model(crystals, FAST)
    calls = []
    assert train_live(model, crystals, FAST, should_stop=lambda: len(calls) >= 3, on_step=calls.append) == "stopped"
    assert len(calls) == 3
    slow = LiveConfig(**{**FAST.__dict__, "steps": MAX_LIVE_STEPS, "max_seconds": 0.2})
    started = time.perf_counter()
    assert train_live(model, crystals, slow) == "time limit"
    assert time.perf_counter() - started < 5


def test_limits_are_enforced(crystals):
    many = crystals * (MAX_LIVE_CRYSTALS // len(crystals) + 1)
    for bad, message in ((LiveConfig(steps=MAX_LIVE_STEPS + 1), "steps"), (LiveConfig(num_steps=5), "T must"),
                         (LiveConfig(lr=0.0), "learning rate"), (LiveConfig(max_seconds=1e6), "max_seconds")):
        with pytest.raises(ValueError, match=message):
            bad.validate(crystals)
    with pytest.raises(ValueError, match=f"at most {MAX_LIVE_CRYSTALS} crystals"):
        LiveConfig().validate(many)
    with pytest.raises(ValueError, match="at least one"):
        LiveConfig().validate([])
    big = crystals[0].replace(atomic_numbers=torch.full((30,), 8), frac_coords=torch.rand(30, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="atoms per crystal"):
        LiveConfig().validate([big])


def test_trainer_thread_runs_stops_and_snapshots(crystals):
    threads = torch.get_num_threads()
    trainer = LiveTrainer(crystals, LiveConfig(**{**FAST.__dict__, "steps": MAX_LIVE_STEPS}))
    assert trainer.status == "ready" and trainer.step == 0
    trainer.start()
    deadline = time.time() + 30
    while trainer.step < 3 and time.time() < deadline:
        time.sleep(0.02)
    assert trainer.running and trainer.status == "running"
    snapshot = trainer.snapshot()
    assert not snapshot.training and all(not p.requires_grad for p in snapshot.parameters())
    assert torch.get_num_threads() == threads, "one torch thread in the trainer only"
    trainer.stop(wait=10)
    assert not trainer.running and trainer.status == "stopped"
    assert 3 <= trainer.step < MAX_LIVE_STEPS
    history = trainer.history
    assert [p.step for p in history] == list(range(1, len(history) + 1))
    with pytest.raises(RuntimeError, match="already been started"):
        trainer.start()
    # the snapshot samples with the public API while its trainer's model moved on
    trajectory = generate(snapshot, composition=composition_text(crystals[0]), sampler="ddim", steps=5, seed=1)
    assert trajectory.num_frames == 6 and trajectory.structure(frame=5).composition == crystals[0].to_structure().composition


def test_trainer_stops_when_the_session_is_gone(crystals):
    alive = threading.Event()
    alive.set()
    trainer = LiveTrainer(crystals, LiveConfig(**{**FAST.__dict__, "steps": MAX_LIVE_STEPS}), keep_going=alive.is_set)
    trainer.start()
    deadline = time.time() + 30
    while trainer.step < 2 and time.time() < deadline:
        time.sleep(0.02)
    alive.clear()
    assert trainer.join(10)
    assert trainer.status == "session ended" and trainer.step < MAX_LIVE_STEPS


def test_trainer_reports_a_failure(crystals):
    def broken():
        raise RuntimeError("boom")

    trainer = LiveTrainer(crystals, FAST)
    trainer.model.loss = lambda *a, **k: broken()  # the thread must report, not die silently
    trainer.start()
    assert trainer.join(10)
    assert trainer.status == "failed: boom"


def test_noise_prediction_shapes_and_learning(crystals):
    config = LiveConfig(steps=200, num_steps=50, hidden=32, layers=1, frequencies=8, lr=3e-3)
    model = build_live_model(crystals, config)
    crystal = crystals[0]
    before = noise_prediction(model.eval(), crystal, 25, seed=3)
    assert before.lattice_true.shape == (6,) and before.lattice_pred.shape == (6,)
    assert before.coords_true.shape == (crystal.num_atoms, 3) and before.coords_pred.shape == (crystal.num_atoms, 3)
    same = noise_prediction(model, crystal, 40, seed=3)
    assert torch.equal(same.lattice_true, before.lattice_true), "one noise draw for every t"
    assert abs(float(before.coords_true.mean(0).abs().max())) < 1e-5, "the coordinate target has no common shift"
    with pytest.raises(ValueError, match="t must be"):
        noise_prediction(model, crystal, 0)
    untrained = build_live_model(crystals, config).eval()
    train_live(model, crystals, config)
    model.eval()
    probes = [(t, s) for t in (10, 25, 40) for s in range(4)]

    def mse(m):
        predictions = [noise_prediction(m, crystal, t, seed=s) for t, s in probes]
        return sum(p.lattice_mse + p.coords_mse for p in predictions) / len(predictions)

    assert mse(model) < 0.8 * mse(untrained), "after training the predicted noise is closer to the true noise"


def test_composition_text_round_trips(crystals):
    from diffusion import parse_formula
    text = composition_text(crystals[0])
    assert sorted(parse_formula(text)) == sorted(crystals[0].atomic_numbers.tolist())
    assert all(ch.isalnum() for ch in text)


def test_core_never_imports_streamlit():
    source = (Path(__file__).resolve().parent.parent / "diffusion" / "live.py").read_text()
    names = {alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Import, ast.ImportFrom))
             for alias in getattr(node, "names", [])} | {node.module for node in ast.walk(ast.parse(source))
                                                          if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name and name.split(".")[0] == "streamlit" for name in names)
