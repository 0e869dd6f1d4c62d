"""AppTest of the Train page: live training on a few Perov-5 crystals, Stop, Sample now, the limits."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "6_Train.py")


@pytest.fixture
def page(app_env):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    yield at
    trainer = at.session_state["train.trainer"] if "train.trainer" in at.session_state else None
    if trainer is not None:  # never leave a thread behind
        trainer.stop(wait=10)


def _values(array) -> list:
    """A plotly array from the chart's JSON: a plain list, or numpy data as {"dtype", "bdata"} (base64)."""
    if isinstance(array, dict) and "bdata" in array:
        import base64
        import numpy as np
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _loss_points(at: AppTest) -> int:
    loss = [c for c in _charts(at) if any(t.get("name") == "loss (each step)" for t in c["data"])] or \
        [c for c in _charts(at) if c["layout"].get("xaxis", {}).get("title", {}).get("text") == "optimizer step"]
    assert loss, "no loss plot"
    traces = [t for t in loss[0]["data"] if t.get("name") == "loss (each step)"]
    return len(_values(traces[0]["x"])) if traces else 0


def _train(at: AppTest, steps: int) -> AppTest:
    at.number_input(key="train.steps").set_value(steps)
    return at.button(key="train.go").click().run()


def _wait(trainer, condition, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    assert condition(), f"timed out: status {trainer.status}, step {trainer.step}"


def test_training_grows_the_loss_plot_then_sample_now(page):
    at = page
    assert any("Pick a few crystals" in i.value for i in at.info)
    assert at.multiselect(key="train.entries").value == [9, 52], "two ideal Perov-5 perovskites picked by default"
    at.selectbox(key="train.T").set_value(100)
    _train(at, 40)
    assert not at.exception and not at.error
    trainer = at.session_state["train.trainer"]
    before = _loss_points(at)
    assert before < 40
    assert trainer.join(60) and trainer.status == "finished"
    at.run()
    assert not at.exception and not at.error
    assert _loss_points(at) == 40, "the loss plot grew to every step"
    loss = next(c for c in _charts(at) if any(t.get("name") == "loss (each step)" for t in c["data"]))
    steps = _values(next(t for t in loss["data"] if t["name"] == "loss (each step)")["x"])
    assert steps == list(range(1, 41))
    assert any("**Finished**: step 40 of 40" in m.value for m in at.markdown)
    assert not at.get("progress"), "no progress bar once training has ended"
    noise = [c for c in _charts(at) if any(t.get("name") == "perfect (y = x)" for t in c["data"])]
    assert len(noise) == 1, "the true-vs-predicted noise scatter"
    names = {t["name"] for t in noise[0]["data"]}
    assert {"lattice ε (6 numbers)", "coordinate score (3 per atom)"} <= names
    lattice = next(t for t in noise[0]["data"] if t["name"].startswith("lattice"))
    assert len(_values(lattice["x"])) == 6
    at.slider(key="train.noise_t").set_value(90).run()
    assert any("noised to t = 90" in c.value for c in at.caption)

    at.number_input(key="train.sample_steps").set_value(10)
    at.selectbox(key="train.sampler").set_value("ddim")
    at.button(key="train.sample_go").click().run()
    assert not at.exception and not at.error
    result = at.session_state["train.sample"]
    assert result.id < 0 and result.trajectory.num_frames == 11
    slider = at.select_slider(key=f"train.t.{result.id}")
    assert [int(o) for o in slider.options][0] == 100 and slider.value == 0
    assert at.get("iframe"), "the sampled trajectory in 3D"
    assert any("Sampled" in m.value and "training crystal" in m.value for m in at.markdown)
    middle = [int(o) for o in slider.options][5]
    at.select_slider(key=f"train.t.{result.id}").set_value(middle).run()
    assert not at.exception
    assert at.query_params["t"] in (str(middle), [str(middle)]), "the 3D view follows the slider through the URL"


def test_stop_and_train_again(page):
    """One running training per session: Train while one runs asks to stop it first; once it has ended,
    "Train again" starts a fresh model that replaces it (and its samples)."""
    at = page
    _train(at, 2000)
    trainer = at.session_state["train.trainer"]
    _wait(trainer, lambda: trainer.step >= 3)
    at.run()
    _train(at, 50)
    assert any("A training is running" in w.value for w in at.warning)
    assert at.session_state["train.trainer"] is trainer, "no second training while one runs"
    stop = at.button(key="train.stop")
    assert not stop.disabled
    stop.click().run()
    assert not at.exception
    assert trainer.join(10) and trainer.status == "stopped"
    assert 3 <= trainer.step < 2000
    assert at.button(key="train.stop").disabled
    assert at.button(key="train.go").label == "Train again"
    _train(at, 20)
    again = at.session_state["train.trainer"]
    assert again is not trainer and not at.warning and not at.error
    assert again.join(60) and again.status == "finished" and again.step == 20


def test_bad_input_starts_nothing(page):
    at = page
    at.multiselect(key="train.entries").set_value([]).run()
    at.button(key="train.go").click().run()
    assert any("pick at least one crystal" in e.value for e in at.error)
    assert "train.trainer" not in at.session_state
    at.multiselect(key="train.entries").set_value(list(range(16))).run()
    at.multiselect(key="train.examples").set_value(["NaCl"]).run()
    at.button(key="train.go").click().run()
    assert any("at most 16 crystals, got 17" in e.value for e in at.error)
    assert "train.trainer" not in at.session_state
    at.multiselect(key="train.entries").set_value([0]).run()
    at.multiselect(key="train.examples").set_value(["anatase"]).run()
    _train(at, 10)
    assert not at.error and "train.trainer" in at.session_state, "12-atom anatase with a perovskite is fine"


def test_the_defaults_rebuild_a_training_crystal():
    """The page's defaults (crystals, steps, copies, T, learning rate, seed, sampler): Sample now on the first
    crystal rebuilds it in most presses (seeds 0-5; docs/teaching.md#train-in-class has the measurements)."""
    from diffusion.api import LiveConfig, LiveTrainer, composition_text, generate, load_csv, match_rms
    from explorer.live_training import DEFAULT_ENTRIES, DEFAULTS

    data = load_csv(ROOT / "data" / "perov_5" / "val.csv.gz")
    crystals = [data.crystals[i] for i in DEFAULT_ENTRIES]
    config = LiveConfig(steps=DEFAULTS["train.steps"], num_steps=DEFAULTS["train.T"], lr=DEFAULTS["train.lr"],
                        seed=DEFAULTS["train.seed"])
    trainer = LiveTrainer(crystals, config)
    trainer.start()
    assert trainer.join(400) and trainer.status == "finished"
    model, target = trainer.snapshot(), crystals[0]
    rebuilt = []
    for seed in range(6):
        trajectory = generate(model, composition=composition_text(target), sampler=DEFAULTS["train.sampler"],
                              steps=config.num_steps, seed=seed)
        if match_rms(trajectory.structure(frame=trajectory.num_frames - 1), target.to_structure()) is not None:
            rebuilt.append(seed)
    assert len(rebuilt) >= 4, f"only seeds {rebuilt} of 0-5 rebuilt the training crystal"


def test_the_sidebar_thread_count_survives_a_training(page):
    """The trainer runs on one torch thread; torch keeps that count process-wide for threads started later,
    so without explicit restoring every later session (and this one) would say "CPU (1 thread)"."""
    import torch

    threads = torch.get_num_threads()
    if threads < 2:
        pytest.skip("the process runs on one torch thread: nothing to restore")
    expected = f"CPU ({threads} threads)"
    at = page
    _train(at, 20)
    trainer = at.session_state["train.trainer"]
    assert trainer.join(60) and trainer.status == "finished"
    at.run()
    assert any(expected in c.value for c in at.sidebar.caption), "this session's sidebar after its training"
    other = AppTest.from_file(str(ROOT / "pages" / "1_Noise_schedules.py"), default_timeout=60).run()
    assert not other.exception
    assert any(expected in c.value for c in other.sidebar.caption), "a new session's sidebar"


def test_the_app_thread_count_survives_a_module_reload(monkeypatch):
    """Streamlit re-imports an edited module; the app's thread count must not be re-read from a torch that a
    trainer has set to one thread since."""
    import importlib
    import threading

    import torch

    import explorer.layout as layout

    threads = torch.get_num_threads()
    if threads < 2:
        pytest.skip("the process runs on one torch thread")
    monkeypatch.setenv("CRYSTAL_DIFFUSION_APP_THREADS", str(layout.APP_THREADS))
    trainer = threading.Thread(target=lambda: torch.set_num_threads(1))   # what diffusion/live.py does
    trainer.start()
    trainer.join()
    seen = []   # Streamlit re-imports in a new script thread, whose torch starts from the lowered count
    reloader = threading.Thread(target=lambda: seen.append(importlib.reload(layout).APP_THREADS))
    try:
        reloader.start()
        reloader.join()
        assert seen == [threads]
    finally:
        torch.set_num_threads(threads)
        importlib.reload(layout)
