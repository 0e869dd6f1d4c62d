"""The Batch & metrics page: N samples at once, their metrics, distributions against the data, a gallery."""
from __future__ import annotations

import io
import time
import zipfile
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import streamlit as st

from diffusion.api import DatasetError, FormulaError, load_csv, resolve_data_file

from .batch_setting import recommended_switch
from .figures import distribution_figure
from .compositions import check_formula
from .metrics_view import BatchMetrics, batch_metrics
from .layout import controls_section
from .models import ModelEntry, default_model, precision_help, sample_trajectory, try_model_info
from .numbers import find_space_group
from .space_group_field import space_group_field
from .settings import DEFAULT_STEPS, PRECISION_LABELS, SAMPLER_LABELS, GenerateSettings
from .viewer import ViewFrame, grid_html
from .widgets import chart, show_view

MAX_BATCH = 64
GALLERY_SIZE = 16
# The composition the page starts with for a model: one whose known structure is among the model's
# training crystals, so the first batch has a match rate (SrTiO3 is not in mp_20's data; see
# docs/teaching.md for the measured rate). Other models start with SrTiO3.
DEFAULT_COMPOSITIONS = {"mp_20": "NaCl"}
ss = st.session_state


@dataclass(frozen=True)
class BatchResult:
    settings: GenerateSettings
    task: str
    num_samples: int
    structures: list           # final pymatgen Structures
    min_distances: np.ndarray  # (B,) angstrom
    metrics: BatchMetrics
    seconds: float
    data_files: tuple[str, ...]


def _data_files(entry: ModelEntry) -> tuple[str, ...]:
    """The model's training files (from its card), resolved against the repository root."""
    files = []
    for item in entry.card.get("data") or []:
        name = item.get("file") if isinstance(item, dict) else item
        if not name:
            continue
        path = resolve_data_file(name)
        if path.is_file():
            files.append(str(path))
    return tuple(files)


def _training_crystals(files: tuple[str, ...]):
    """Every crystal of the readable files (unreadable files are left out)."""
    for file in files:
        try:
            yield from load_csv(file).crystals
        except DatasetError:
            continue


@st.cache_data(show_spinner="Reading the training data for comparison...", max_entries=8)
def reference_stats(files: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Density (g/cm³), number of elements and atoms per cell of every crystal in the files."""
    from pymatgen.core.periodic_table import Element

    masses = np.zeros(119)
    for z in range(1, 119):
        try:
            masses[z] = float(Element.from_Z(z).atomic_mass)
        except Exception:
            pass
    density, elements, atoms = [], [], []
    for crystal in _training_crystals(files):
        z = crystal.atomic_numbers.numpy()
        density.append(masses[z].sum() * 1.66053906660 / crystal.volume)
        elements.append(len(set(z.tolist())))
        atoms.append(len(z))
    return {"density": np.asarray(density), "elements": np.asarray(elements), "atoms": np.asarray(atoms)}


@st.cache_data(show_spinner=False, max_entries=32)
def known_structures(files: tuple[str, ...], formula: str, num_atoms: int) -> list:
    """Structures in the training files with this reduced formula and atom count (for matching)."""
    from pymatgen.core import Composition

    target = Composition(formula).reduced_formula
    found = []
    for crystal in _training_crystals(files):
        if crystal.num_atoms == num_atoms and crystal.to_structure().composition.reduced_formula == target:
            found.append(crystal.to_structure())
    return found[:50]


def controls(models: list[ModelEntry]):
    """Widgets; returns (entry, info, settings, number of samples, problem or None)."""
    names = [m.name for m in models]
    if ss.get("batch.model") not in names:
        ss["batch.model"] = default_model(models).name
    ss.setdefault("batch.composition", DEFAULT_COMPOSITIONS.get(ss["batch.model"], "SrTiO3"))
    box = controls_section("Model, composition and sampler", has_result=ss.get("batch.result") is not None)
    left, middle, right = box.columns([1.2, 1, 1], gap="large")
    problem = None
    with left:
        st.selectbox("Model", names, key="batch.model", format_func=lambda n: next(m.label for m in models if m.name == n))
        entry = next(m for m in models if m.name == ss["batch.model"])
        info, error = try_model_info(entry)
        if info is None:
            st.error(error)
            return entry, None, None, 0, error
        composition, num_atoms, numbers = "", 0, None
        if info.task == "csp":
            composition = st.text_input("Composition (atoms in the cell)", key="batch.composition", max_chars=200)
            try:
                numbers = check_formula(info, composition)
            except FormulaError as exc:
                st.error(f"Composition: {exc}.", icon=":material/error:")
                problem = f"composition: {exc}"
        else:
            num_atoms = int(st.number_input("Atoms per cell (0 = drawn from the training data)", min_value=0,
                                            max_value=info.max_atoms, value=0, step=1, key="batch.atoms"))
        space_group = None
        if info.use_space_group:
            space_group, sg_problem = space_group_field(entry, "batch", "batch.sg", "batch.composition",
                                                        numbers if info.task == "csp" and problem is None else None,
                                                        "e.g. 225 or Fm-3m")
            problem = problem or sg_problem
        chosen = (recommended_switch(entry, numbers, space_group, info.num_steps)
                  if info.task == "csp" and problem is None else None)
    with middle:
        count = int(st.number_input(f"Number of samples (1 to {MAX_BATCH})", min_value=1, max_value=MAX_BATCH,
                                    value=16, step=1, key="batch.n"))
        seed = int(st.number_input("First seed (sample i uses seed + i)", min_value=0, max_value=2**31 - 1 - MAX_BATCH,
                                   value=0, step=1, key="batch.seed"))
    with right:
        if chosen is not None:   # the switch decides; the widgets show what it runs
            ss["batch.sampler"], ss["batch.steps"] = chosen["sampler"], chosen["steps"]
        sampler = st.selectbox("Sampler", list(SAMPLER_LABELS), key="batch.sampler", format_func=SAMPLER_LABELS.get,
                               disabled=chosen is not None)
        steps = int(st.number_input(f"Network evaluations (1 to {info.num_steps})", min_value=1, max_value=info.num_steps,
                                    value=min(DEFAULT_STEPS["ddim"], info.num_steps), step=10, key="batch.steps",
                                    disabled=chosen is not None))
        precision = st.selectbox("Network precision", list(PRECISION_LABELS), key="batch.precision",
                                 format_func=PRECISION_LABELS.get, help=precision_help())
    settings = GenerateSettings(model=entry.name, composition=composition.strip(), num_atoms=num_atoms,
                                space_group=space_group, sampler=sampler, steps=steps, seed=seed, precision=precision)
    if chosen is not None:
        settings = replace(settings, **chosen)
    return entry, info, settings, count, problem


def run(entry: ModelEntry, settings: GenerateSettings, count: int, task: str) -> None:
    started = time.perf_counter()
    try:
        trajectory = sample_trajectory(entry.path, entry.version, settings, num_samples=count, record="final")
        structures = trajectory.final_structures()
        min_distances = trajectory.min_distance[-1].double().numpy()
        files = _data_files(entry)
        references = known_structures(files, settings.composition, len(structures[0])) if task == "csp" and files else None
        metrics = batch_metrics(structures, references, settings.space_group)
    except Exception as exc:  # never lose the previous batch
        ss["batch.error"] = f"Sampling failed: {exc}"
        return
    ss["batch.result"] = BatchResult(settings, task, count, structures, min_distances, metrics,
                                     time.perf_counter() - started, files)
    ss.pop("batch.error", None)


METRICS_PER_ROW = 4
# short headers, so that the nine columns fit a projector or 150 % zoom; the full name is the header's tooltip
TABLE_LABELS = {
    "sample": st.column_config.NumberColumn("#", help="sample number", width=40),
    "atoms": st.column_config.NumberColumn("atoms", width=55),
    "space group": st.column_config.TextColumn("group", help="space group (spglib, 0.1 Å)"),
    "density (g/cm³)": st.column_config.NumberColumn("ρ g/cm³", help="density (g/cm³)"),
    "shortest distance (Å)": st.column_config.NumberColumn("d min Å", help="shortest interatomic distance (Å)"),
    "valid": st.column_config.CheckboxColumn("valid", help="structurally valid: no two atoms closer than 0.5 Å"),
    "matches known": st.column_config.CheckboxColumn("known", help="matches a known structure (StructureMatcher)"),
}


def _table(result: BatchResult) -> pd.DataFrame:
    rows = []
    for i, (s, d) in enumerate(zip(result.structures, result.min_distances)):
        sg = find_space_group(s)
        matched = result.metrics.matched
        rows.append({"sample": i + 1, "formula": s.composition.reduced_formula,
                     "atoms": len(s), "space group": f"{sg[0]} ({sg[1]})" if sg else "?",
                     "density (g/cm³)": round(float(s.density), 3), "shortest distance (Å)": round(float(d), 3),
                     "valid": bool(result.metrics.valid[i]),
                     **({"matches known": bool(matched[i])} if matched is not None else {})})
    return pd.DataFrame(rows)


def _zip_cifs(result: BatchResult) -> bytes:
    from pymatgen.io.cif import CifWriter

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, s in enumerate(result.structures):
            archive.writestr(f"sample_{i + 1:03d}_{s.composition.reduced_formula}.cif", str(CifWriter(s)))
    return buffer.getvalue()


def show(result: BatchResult) -> None:
    st.markdown(f"**{result.num_samples} samples** of {result.settings.summary(result.task)}, "
                f"in {result.seconds:.1f} s ({result.seconds / result.num_samples:.2f} s per structure).")
    metrics = result.metrics.metrics
    for start in range(0, len(metrics), METRICS_PER_ROW):   # six or seven in one row squeeze their labels together
        row = metrics[start:start + METRICS_PER_ROW]
        for column, metric in zip(st.columns(METRICS_PER_ROW), row):
            column.metric(metric.name, metric.text(), help=metric.detail)
    if result.metrics.notes:
        st.caption(" ".join(result.metrics.notes))

    st.subheader("Distributions against the training data")
    reference = reference_stats(result.data_files) if result.data_files else None
    if reference is None:
        st.caption("The model card names no readable training file, so only the samples are shown.")
    densities = np.array([float(s.density) for s in result.structures])
    elements = np.array([len(s.composition.elements) for s in result.structures])
    left, right = st.columns(2)
    chart(distribution_figure(densities, None if reference is None else reference["density"], "Density",
                              "density (g/cm³)"), key="batch.density", container=left)
    chart(distribution_figure(elements, None if reference is None else reference["elements"], "Number of elements",
                              "elements per crystal", discrete=True), key="batch.elements", container=right)
    st.caption("Grey: the crystals the model was trained on (its card's data files); blue: these samples. For "
               "structure prediction the number of elements is fixed by the composition; the density shows "
               "whether the cells come out the right size.")

    st.subheader("Gallery")
    shown = result.structures[:GALLERY_SIZE]
    titles = [f"{i + 1}: {s.composition.reduced_formula}{'' if result.metrics.valid[i] else ' (invalid)'}"
              for i, s in enumerate(shown)]
    frames = [ViewFrame.from_structure(s).origin_on_first_atom() for s in shown]
    columns = 4
    rows = -(-len(frames) // columns)
    show_view(grid_html(frames, titles, columns=columns, cell_height=240), rows * 240)
    if len(result.structures) > GALLERY_SIZE:
        st.caption(f"The first {GALLERY_SIZE} of {len(result.structures)} samples; all are in the table and the download.")
    st.dataframe(_table(result), hide_index=True, width="stretch", column_config=TABLE_LABELS)
    st.caption(f"Sample k was drawn with seed {result.settings.seed} + k − 1: that seed on the Generate page "
               "reproduces it alone.")
    st.download_button("All samples (zip of CIF files)", data=lambda: _zip_cifs(result), file_name="samples.zip",
                       mime="application/zip", icon=":material/download:", on_click="ignore", key="batch.dl")
