"""AppTest of the Home, Noise schedules, Forward process and Batch pages, and of the navigation."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from conftest import numbers_tables, shown_tables

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("pages/1_Noise_schedules.py", "pages/2_Forward_process.py", "pages/3_Generate.py",
         "pages/4_Batch_and_metrics.py")
RUTILE_CIF = """data_TiO2
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   4.594
_cell_length_b   4.594
_cell_length_c   2.959
_cell_angle_alpha   90
_cell_angle_beta   90
_cell_angle_gamma   90
_symmetry_Int_Tables_number   1
loop_
 _symmetry_equiv_pos_as_xyz
  'x, y, z'
loop_
 _atom_site_label
 _atom_site_type_symbol
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Ti1  Ti  0.0  0.0  0.0  1
  Ti2  Ti  0.5  0.5  0.5  1
  O1  O  0.3049  0.3049  0.0  1
  O2  O  0.6951  0.6951  0.0  1
  O3  O  0.8049  0.1951  0.5  1
  O4  O  0.1951  0.8049  0.5  1
"""


def _run(path: str) -> AppTest:
    return AppTest.from_file(str(ROOT / path), default_timeout=120).run()


def test_home_lists_models_device_and_navigates_to_every_page(app_env):
    at = _run("app.py")
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "`tiny_csp`" in text and "`tiny_gen`" in text
    assert "ab initio" in text and "crystal structure prediction" in text
    assert any("CPU" in c.value or "CUDA" in c.value for c in at.caption)
    assert len(at.get("iframe")) == 3, "one crystal at three noise levels"
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.title, page


def test_home_without_models_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(tmp_path))
    at = _run("app.py")
    assert not at.exception
    assert any("No trained models" in w.value for w in at.warning)
    at = _run("pages/3_Generate.py")
    assert not at.exception and any("No trained models" in e.value for e in at.error)


def test_noise_schedules_page(app_env):
    at = _run("pages/1_Noise_schedules.py")
    assert not at.exception
    assert len(at.get("plotly_chart")) == 5
    assert len(shown_tables(at)[0]) == 2
    at.multiselect(key="sched.names").set_value(["linear", "cosine", "sigmoid", "quadratic"])
    at.number_input(key="sched.T").set_value(200).run()
    assert not at.exception
    assert list(shown_tables(at)[0]["schedule"]) == ["linear", "cosine", "sigmoid", "quadratic"]
    assert at.slider(key="sched.t").value <= 200
    at.multiselect(key="sched.names").set_value([]).run()
    assert not at.exception and at.warning


def test_forward_page_slider_moves_the_crystal(app_env):
    at = _run("pages/2_Forward_process.py")
    assert not at.exception
    view = at.get("iframe")[0].proto.srcdoc
    table = numbers_tables(at)[0]
    assert table["space group (spglib, 0.1 Å)"] == "Pm-3m (221)"
    assert '"follow":"t"' in view and '"ghosts":[{' in view, "every x_t in one view, the clean crystal as a ghost"
    at.slider(key="fwd.t").set_value(700).run()
    assert not at.exception
    assert at.query_params["t"] in ("700", ["700"]), "the view follows ?t="
    assert at.get("iframe")[0].proto.srcdoc == view, "scrubbing does not reload the view"
    table = numbers_tables(at)[0]
    assert table["step t"] == "700 of 1000" and table["a, b, c (Å)"] != "3.905, 3.905, 3.905"
    at.selectbox(key="fwd.example").set_value("rutile").run()
    assert not at.exception
    assert at.get("iframe")[0].proto.srcdoc != view


def test_forward_page_upload(app_env):
    at = _run("pages/2_Forward_process.py")
    at.radio(key="fwd.source").set_value("Upload a CIF").run()
    assert not at.exception and at.info
    at.file_uploader(key="fwd.upload").set_value(("broken.cif", b"data_x\n_cell_length_a 3\nnonsense", "text/plain")).run()
    assert not at.exception
    assert any("broken.cif" in e.value for e in at.error)
    at.file_uploader(key="fwd.upload").set_value(("rutile.cif", RUTILE_CIF.encode(), "text/plain")).run()
    assert not at.exception and not at.error
    table = numbers_tables(at)[0]
    assert table["space group (spglib, 0.1 Å)"] == "P4_2/mnm (136)"


def test_forward_page_dataset_entry(app_env, perov_rows, monkeypatch):
    import explorer.forward

    monkeypatch.setattr(explorer.forward, "dataset_files", lambda: {"perov_small.csv": perov_rows})
    at = _run("pages/2_Forward_process.py")
    at.radio(key="fwd.source").set_value("Dataset entry").run()
    assert not at.exception
    at.number_input(key="fwd.index").set_value(3).run()
    assert not at.exception
    assert any(c.value.endswith("5 atoms") and "W" in c.value for c in at.caption), "row 3 is RuWOFN, 5 atoms"
    assert at.get("iframe")


def test_batch_page(app_env):
    at = _run("pages/4_Batch_and_metrics.py")
    assert not at.exception and at.info
    at.number_input(key="batch.n").set_value(3)
    at.number_input(key="batch.steps").set_value(5)
    at.button(key="batch.go").click().run()
    assert not at.exception and not at.error
    labels = [m.label for m in at.metric]
    assert "structurally valid" in labels
    assert len(at.get("plotly_chart")) == 2
    assert at.get("iframe"), "gallery"
    table = at.dataframe[0].value
    assert len(table) == 3 and set(table["formula"]) == {"SrTiO3"}
    at.text_input(key="batch.composition").set_value("Qq2").run()
    at.button(key="batch.go").click().run()
    assert not at.exception
    assert any("Nothing sampled" in e.value for e in at.error)
    assert len(at.dataframe[0].value) == 3, "the earlier batch is kept"
    at.selectbox(key="batch.model").set_value("tiny_gen").run()
    at.number_input(key="batch.n").set_value(2)
    at.number_input(key="batch.steps").set_value(5)
    at.selectbox(key="batch.precision").set_value("bfloat16")
    at.button(key="batch.go").click().run()
    assert not at.exception and not at.error
    assert len(at.dataframe[0].value) == 2
    assert at.session_state["batch.result"].settings.precision == "bfloat16"


def test_home_shows_shipped_cards_readably(tmp_path, monkeypatch):
    """The shipped checkpoints' cards: training per machine in one line, metrics as numbers, not dicts."""
    import shutil
    for name in ("mp_20", "carbon_24"):
        for suffix in (".pt", ".json"):
            shutil.copy(ROOT / "checkpoints" / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(tmp_path))
    at = _run("app.py")
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "optimizer steps" in text and "on 2 CPU cores" in text
    tables = [df.value for df in at.dataframe]
    assert tables and all("{" not in str(v) for table in tables for v in table.to_numpy().ravel())
    assert any("match rate" in table.columns for table in tables) and any("COV-R" in table.columns for table in tables)


def test_a_cdvae_checkpoint_is_listed_on_home_and_kept_off_the_diffusion_pages(app_env_cdvae):
    """Home lists both families (a CDVAE card says how it decodes); Batch's model picker offers only the
    diffusion models (its samplers and metrics are theirs); Generate offers both (tests/test_app_generate.py)."""
    at = _run("app.py")
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "`tiny_cdvae`" in text and "`tiny_csp`" in text
    assert "Langevin decoding:** 5 noise levels x 10 steps" in text
    for page in ("pages/4_Batch_and_metrics.py", "pages/5_Compare.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        options = [o for box in at.selectbox for o in box.options if "tiny" in str(o)]
        assert options and not any("cdvae" in str(o) for o in options), (page, options)
