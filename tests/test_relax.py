"""Relaxation with CHGNet (diffusion.relax) and its two app sections (Generate, Batch & metrics).

CHGNet is imported and loaded once for the module (~7 s); each relaxation of a 5-atom
perovskite takes 1-3 s on one CPU thread. Skipped as a whole where chgnet is not installed,
except the test of the missing-chgnet message, which needs no chgnet.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import shown_tables
from pymatgen.core import Lattice, Structure

from diffusion.relax import (CHGNET_REQUIREMENT, HARD_MAX_STEPS, PotentialUnavailable, energies_along,
                             load_potential, relax, relax_batch, rms_displacement, still_matches)

ROOT = Path(__file__).resolve().parent.parent
SRTIO3_A = 3.905  # Å, experimental cubic SrTiO3 at room temperature
PEROVSKITE_SITES = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def _cubic(a: float = 4.1) -> Structure:
    return Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"], PEROVSKITE_SITES)


def _distorted() -> Structure:
    """SrTiO3 started 5% too large, sheared and with every atom off its site (P1)."""
    lattice = Lattice.from_parameters(4.15, 4.05, 4.10, 89.0, 91.0, 90.5)
    frac = np.array(PEROVSKITE_SITES) + np.array([[0, 0, 0], [0.02, -0.01, 0.01], [0, -0.04, 0.02],
                                                   [0.03, 0, 0], [0.01, 0, -0.03]])
    return Structure(lattice, ["Sr", "Ti", "O", "O", "O"], frac)


@pytest.fixture(scope="module")
def potential():
    pytest.importorskip("chgnet", reason=f"chgnet is not installed ({CHGNET_REQUIREMENT})")
    return load_potential("cpu")


def test_distorted_srtio3_relaxes_to_cubic_perovskite(potential):
    start = _distorted()
    result = relax(start, potential, max_steps=200)
    assert result.space_group_before == ("P1", 1)
    assert result.space_group_after == ("Pm-3m", 221) and result.space_group_changed
    a, b, c = result.relaxed.lattice.abc
    assert max(a, b, c) - min(a, b, c) < 0.02 and max(abs(x - 90) for x in result.relaxed.lattice.angles) < 0.5
    assert abs(np.mean([a, b, c]) / SRTIO3_A - 1) < 0.03, f"a = {a:.3f} Å, experiment {SRTIO3_A} Å"
    assert result.converged and result.stopped_by == "converged" and 1 <= result.steps < 200
    assert result.max_force_before > 0.5 and result.max_force_after < 0.05
    assert result.energy_after < result.energy_before - 0.05, "relaxing goes downhill"
    assert -9.0 < result.energy_after < -8.0, "CHGNet's SrTiO3 is about -8.4 eV/atom"
    assert len(result.energies) == result.steps + 1 and result.energies[0] == result.energy_before
    assert 0.02 < result.rms_displacement < 0.3 and result.volume_change < 0
    assert start.lattice.abc == _distorted().lattice.abc, "the input is not modified"


def test_step_cap_is_respected(potential):
    result = relax(_distorted(), potential, max_steps=3)
    assert result.steps == 3 and result.stopped_by == "step cap" and not result.converged
    assert len(result.energies) == 4
    for bad in (0, HARD_MAX_STEPS + 1):
        with pytest.raises(ValueError):
            relax(_distorted(), potential, max_steps=bad)


def test_progress_can_stop_and_event_cancels(potential):
    calls = []

    def progress(step, cap):
        calls.append((step, cap))
        return step < 2  # False at step 2: stop

    result = relax(_distorted(), potential, max_steps=200, progress=progress)
    assert calls == [(0, 200), (1, 200), (2, 200)]
    assert result.steps == 2 and result.cancelled and result.stopped_by == "cancelled"
    assert result.energy_after < result.energy_before, "the partial structure is kept"

    stop = threading.Event()
    result = relax(_distorted(), potential, max_steps=200, progress=lambda step, cap: stop.set() if step == 4 else None,
                   cancel=stop)
    assert result.steps == 5 and result.cancelled, "the event is checked before the next step"


def test_stability_proxy_and_energies_along(potential):
    cubic, distorted = _cubic(), _distorted()
    seen = []
    stability = relax_batch([cubic, distorted, cubic], potential, max_samples=2, max_steps=100,
                            progress=lambda i, total, step, cap: seen.append((i, total)))
    assert stability.total == 2 and stability.relaxed == 2 and not stability.cancelled
    assert "first 2 of 3" in " ".join(stability.notes)
    assert stability.matched.tolist() == [True, True] and stability.fraction_matched == 1.0
    assert stability.match_rms[0] < 1e-3, "cubic SrTiO3 only changes its cell size (the matcher scales volume)"
    assert 0 < stability.mean_match_rms < 0.1 and stability.mean_displacement > 0
    assert {i for i, _ in seen} == {0, 1} and all(total == 2 for _, total in seen)

    stopped = relax_batch([distorted, distorted], potential, progress=lambda i, total, step, cap: step < 1)
    assert stopped.relaxed == 1 and stopped.cancelled and stopped.results[0].steps == 1

    moved = cubic.copy()
    moved.translate_sites([1], [0.5, 0.5, 0.5])  # Ti onto the Sr site: a different structure
    assert still_matches(cubic, moved) is None
    assert rms_displacement(cubic, cubic.copy().translate_sites(range(5), [0.3, 0.1, 0.9])) < 1e-9, \
        "a common shift is not a displacement"

    pairs = energies_along([distorted, cubic, cubic, distorted], potential, every=2)
    assert [i for i, _ in pairs] == [0, 2, 3], "every 2nd frame, and the last one"
    assert pairs[0][1] == pytest.approx(pairs[2][1], abs=1e-4) and pairs[1][1] < 0


def test_missing_chgnet_says_how_to_install(monkeypatch):
    for name in [m for m in sys.modules if m == "chgnet" or m.startswith("chgnet.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "chgnet", None)  # makes `import chgnet...` raise ImportError
    with pytest.raises(PotentialUnavailable, match=r"install it with: pip install chgnet==0\.4\.2"):
        load_potential()
    assert issubclass(PotentialUnavailable, ImportError)


def test_diffusion_imports_without_chgnet_or_streamlit():
    code = ("import sys; sys.modules['chgnet'] = None; import diffusion, diffusion.relax; "
            "assert 'streamlit' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


# ---------------------------------------------------------------- the app

def test_stop_in_the_app_becomes_a_graceful_stop():
    """Streamlit's stop exception, raised in a progress update, stops the optimizer and is re-raised after."""
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    from explorer.relax_view import _Interrupt

    def stopped():
        raise StopException()

    interrupt = _Interrupt()
    assert interrupt.update(lambda: None) is None, "a normal update lets the optimizer go on"
    assert interrupt.update(stopped) is False and interrupt.update(lambda: None) is False
    with pytest.raises(StopException):
        interrupt.reraise()


@pytest.fixture
def app_env(checkpoint_dir, monkeypatch, potential):
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(checkpoint_dir))
    return checkpoint_dir


def _frame(at, column: str):
    """The first table with this column (AppTest does not report a dataframe's key)."""
    return next((df for df in [d.value for d in at.dataframe] + shown_tables(at) if column in df.columns), None)


def _table(at) -> dict[str, tuple[str, str]]:
    frame = _frame(at, "relaxed (CHGNet)")
    assert frame is not None, "no before/after table"
    return {q: (g, r) for q, g, r in zip(frame["quantity"], frame["generated"], frame["relaxed (CHGNet)"])}


def test_generate_page_relaxes_final_structure(app_env, monkeypatch):
    import json

    from streamlit.testing.v1 import AppTest

    from explorer import relax_view

    at = AppTest.from_file(str(ROOT / "pages" / "3_Generate.py"), default_timeout=120).run()
    at.number_input(key="gen.steps").set_value(8)
    at.button(key="gen.go").click().run()
    assert not at.exception and not at.error
    assert _frame(at, "relaxed (CHGNet)") is None, "nothing relaxed before the button"
    at.number_input(key="relax.max_steps").set_value(25)
    at.button(key="relax.go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    entry = at.session_state["relax.results"][1]
    assert 1 <= entry.result.steps <= 25
    table = _table(at)
    assert set(table) >= {"energy per atom (eV/atom)", "largest force (eV/Å)", "RMS displacement (Å)",
                          "space group (spglib, 0.1 Å)"}
    before, after = table["energy per atom (eV/atom)"]
    assert float(before) == pytest.approx(entry.result.energy_before, abs=1e-4)
    assert float(after) == pytest.approx(entry.result.energy_after, abs=1e-4) and float(before) > float(after)
    assert float(table["RMS displacement (Å)"][1]) == pytest.approx(entry.result.rms_displacement, abs=1e-3)
    doc = at.get("iframe")[1].proto.srcdoc
    data = json.JSONDecoder().raw_decode(doc, doc.index('{"frames":'))[0]
    assert data["titles"] == ["generated", "relaxed (CHGNet)"] and len(data["frames"]) == 2
    assert any("relax.energies" in c.proto.id for c in at.get("plotly_chart"))

    # a rerun (the step slider) keeps the relaxation; a failure shows an error and keeps it too
    at.select_slider(key="gen.t.1").set_value(29).run()
    assert _table(at) == table
    monkeypatch.setattr(relax_view, "get_potential",
                        lambda: (_ for _ in ()).throw(PotentialUnavailable("no module named 'chgnet'; install it "
                                                                           "with: pip install chgnet==0.4.2")))
    at.button(key="relax.go").click().run()
    assert not at.exception
    assert any("pip install chgnet==0.4.2" in e.value for e in at.error)
    assert _table(at) == table, "the earlier relaxation is still shown"


def test_batch_page_relax_all_shows_stability_proxy(app_env):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "4_Batch_and_metrics.py"), default_timeout=120).run()
    at.number_input(key="batch.n").set_value(2)
    at.number_input(key="batch.steps").set_value(5)
    at.button(key="batch.go").click().run()
    assert not at.exception and not at.error
    at.number_input(key="relax.batch_steps").set_value(15)
    at.button(key="relax.batch_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    labels = {m.label: m.value for m in at.metric}
    assert "still match after relaxing" in labels and labels["still match after relaxing"].endswith("%")
    stability = at.session_state["relax.batch"][1]
    assert stability.relaxed == 2 and all(r is None or r.steps <= 15 for r in stability.results)
    table = _frame(at, "still matches")
    assert table is not None and len(table) == 2
    at.button(key="batch.go").click().run()  # a new batch: the old proxy is not shown for it
    assert "still match after relaxing" not in {m.label for m in at.metric}
