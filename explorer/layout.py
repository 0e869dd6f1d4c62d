"""Page set-up shared by every page: page config, sidebar navigation, device and model status.

The app uses Streamlit's ``pages/`` folder (auto-discovered; ``app.py`` is the home
page). The built-in sidebar list is hidden in ``.streamlit/config.toml``
(``client.showSidebarNavigation = false``) and replaced by the links below, so the
home page reads "Home" instead of the file name "app".

Also shared by every page: the style sheet (equation panels that wrap to their column,
layouts that survive browser zoom), projector mode (``?projector=1``: larger type, sidebar
collapsed, large 3D views, controls folded; pages ask ``projector_mode()``), the torch
thread count put back for every run, and the background warm-up of the heavy data.
"""
from __future__ import annotations

import logging
import os
import threading
import time

import streamlit as st
import torch
from streamlit.errors import StreamlitAPIException

APP_TITLE = "Crystal Diffusion Explorer"
PAGES = (
    ("app.py", "Home", ":material/home:"),
    ("pages/0_Diffusion_in_2D.py", "Diffusion in 2D", ":material/scatter_plot:"),
    ("pages/1_Noise_schedules.py", "Noise schedules", ":material/show_chart:"),
    ("pages/2_Forward_process.py", "Forward process", ":material/blur_on:"),
    ("pages/3_Generate.py", "Generate", ":material/auto_awesome:"),
    ("pages/4_Batch_and_metrics.py", "Batch & metrics", ":material/grid_view:"),
    ("pages/5_Compare.py", "Compare", ":material/compare:"),
    ("pages/6_Train.py", "Train", ":material/model_training:"),
    ("pages/7_Open_a_trajectory.py", "Open a trajectory", ":material/folder_open:"),
    ("pages/8_Latent_space.py", "Latent space", ":material/hub:"),
)


def page_link(path: str, label: str, icon: str | None = None, container=None) -> bool:
    """A link to another page; False (and nothing drawn) when the page is not registered
    (a page run on its own, e.g. by ``AppTest.from_file("pages/...")``)."""
    target = container or st
    try:
        target.page_link(path, label=label, icon=icon)
        return True
    except StreamlitAPIException:
        return False


def switch_to(path: str, label: str, icon: str | None = None) -> None:
    """Go to another page; where pages are not registered (a page run on its own) draw a link to it instead."""
    try:
        st.switch_page(path)
    except StreamlitAPIException:
        page_link(path, label, icon)


PROJECTOR_PARAM = "projector"
_PROJECTOR_KEY = "layout.projector"
PROJECTOR_VIEW_SCALE = 1.3   # 3D views are this much taller in projector mode
# torch's thread count for the app's own work, read before any training thread lowered it, and kept in the
# environment: Streamlit re-imports a module whose source changed, and a count read then could be a trainer's 1
APP_THREADS = int(os.environ.setdefault("CRYSTAL_DIFFUSION_APP_THREADS", str(torch.get_num_threads())))
_log = logging.getLogger(__name__)

# Always: equation panels (``equation_view``) wrap at = and + and shrink a little in a narrow column
# instead of running out of it; button, toggle, checkbox and metric labels wrap instead of being cut; and a column
# too narrow for a labelled button, a toggle or a table (150-200 % browser zoom) moves below its
# neighbours and takes the whole width (Streamlit's columns already wrap, at a minimum width).
_CSS = """
[class*="st-key-eqpanel"] { container-type: inline-size; }
[class*="st-key-eqpanel"] .stMarkdown > div { align-items: stretch; width: 100%; margin-left: 0; margin-right: 0; }
[class*="st-key-eqpanel"] .katex-display { text-align: left; margin: 0.25em 0; }
[class*="st-key-eqpanel"] .katex-display > .katex { white-space: normal; text-align: left;
    font-size: clamp(0.92em, 5.4cqi, 1.21em); }
[data-testid^="stBaseButton"] p { white-space: normal; }
[data-testid="stCheckbox"] [data-testid="stWidgetLabel"], [data-testid="stCheckbox"] [data-testid="stWidgetLabel"] *,
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] * { white-space: normal; overflow: visible; text-overflow: clip; }
[data-testid="stColumn"]:has([data-testid="stButton"] [data-testid="stMarkdownContainer"] p) { min-width: min(100%, 5.5rem); }
[data-testid="stColumn"]:has([data-testid="stCheckbox"]) { min-width: min(100%, 8rem); }
[data-testid="stColumn"]:has([data-testid="stDataFrame"]), [data-testid="stColumn"]:has([data-testid="stTable"]) {
    min-width: min(100%, 18rem); }
[data-testid="stColumn"]:has([data-testid="stMetric"]) { min-width: min(100%, 10rem); }
[data-testid="stColumn"]:has([data-testid="stMultiSelect"]) { min-width: min(100%, 16rem); }
"""
# Projector mode: rem-based type and spacing larger, the page as wide as the screen.
_PROJECTOR_CSS = """
html { font-size: 20px; }
[data-testid="stMainBlockContainer"] { max-width: none; padding: 2.2rem 1.6rem 4rem 1.6rem; }
"""


def projector_mode() -> bool:
    """Whether this session shows the projector layout (the URL's ``?projector=1``, kept for the session)."""
    if _PROJECTOR_KEY in st.session_state:
        return bool(st.session_state[_PROJECTOR_KEY])
    return st.query_params.get(PROJECTOR_PARAM) == "1"


def kept_query_params() -> dict[str, str]:
    """Query parameters that a page rewriting its whole URL should keep (projector mode)."""
    return {PROJECTOR_PARAM: "1"} if projector_mode() else {}


def view_height(height: int) -> int:
    """The height of a 3D view in this layout: taller in projector mode."""
    return int(round(height * PROJECTOR_VIEW_SCALE)) if projector_mode() else int(height)


def controls_section(label: str, has_result: bool = False):
    """A container for a page's controls: folded in projector mode once there is a result to look at."""
    if projector_mode():
        return st.expander(label, expanded=not has_result, icon=":material/tune:")
    return st.container()


def _sync_projector() -> bool:
    """The URL wins when it says; else the session's choice, written back to the URL (a page link drops it)."""
    value = st.query_params.get(PROJECTOR_PARAM)
    if value is not None:
        st.session_state[_PROJECTOR_KEY] = value == "1"
    elif st.session_state.get(_PROJECTOR_KEY):
        st.query_params[PROJECTOR_PARAM] = "1"
    return projector_mode()


def _projector_toggle(on: bool) -> None:
    wanted = st.toggle("Projector mode", value=on, help="Larger type and 3D views, sidebar folded, controls "
                       "folded once there is a result: for a lesson on a projector. Kept in the page URL.")
    if wanted != on:
        st.session_state[_PROJECTOR_KEY] = wanted
        if wanted:
            st.query_params[PROJECTOR_PARAM] = "1"
        else:
            st.query_params.pop(PROJECTOR_PARAM, None)
        st.rerun()


def restore_threads() -> None:
    """Put torch's thread count back to the process default for this run.

    ``torch.set_num_threads`` is process-wide: the live trainer's ``set_num_threads(1)``
    (diffusion/live.py) made every script thread started later use one thread, and the
    sidebar said "CPU (1 threads)" for every new session.
    """
    if torch.get_num_threads() != APP_THREADS:
        torch.set_num_threads(APP_THREADS)


def setup_page(title: str) -> None:
    """Page config, style, sidebar navigation and status, and the warm-up. Call first on every page.

    No ``page_icon``: Streamlit fetches Material-icon favicons from Google's font server,
    which fails in an offline classroom; the default favicon is served by the app itself.
    """
    restore_threads()
    projector = _sync_projector()
    st.set_page_config(page_title=f"{title} · {APP_TITLE}", layout="wide",
                       initial_sidebar_state="collapsed" if projector else "auto")
    st.html(f"<style>{_CSS}{_PROJECTOR_CSS if projector else ''}</style>")
    with st.sidebar:
        st.markdown(f"### {APP_TITLE}")
        for path, label, page_icon in PAGES:
            if not page_link(path, label, page_icon):
                break  # running a single page on its own: no navigation to show
        st.divider()
        _projector_toggle(projector)
        _status()
    start_warm_up()


# ---------------------------------------------------------------- warm-up of the heavy data

_WARM_UP: dict = {"thread": None, "seconds": None}
_WARM_UP_THREAD = "warm-up"
_WARM_UP_LOCK = threading.Lock()


def _warm_up_models() -> None:
    """Read every offered model's training crystals once (the space-group vote, the templates, the
    formula-units advice), the default model first. ``st.cache_resource`` keeps them for all
    sessions; a user who asks before they are ready waits for the same computation, under its spinner."""
    from . import models

    restore_threads()
    started = time.perf_counter()
    offered = models.available_models()
    if offered:
        first = models.default_model(offered)
        offered = [first] + [m for m in offered if m is not first]
    for entry in offered:
        if not entry.card.get("data"):
            continue
        try:
            models.warm_up_training_crystals(entry)
        except Exception as exc:  # no usable training data: the page says so when asked
            _log.info("warm-up of %s: %s", entry.name, exc)
    _WARM_UP["seconds"] = time.perf_counter() - started
    _log.warning("warm-up: the training crystals of %d models were read in %.1f s", len(offered), _WARM_UP["seconds"])


def start_warm_up() -> None:
    """Start the warm-up thread once per server process (on the first page any visitor opens); not
    without a server, nor with CRYSTAL_DIFFUSION_WARM_UP=0 (the tests: a process that exits while the
    thread reads data is aborted)."""

    from streamlit.runtime import Runtime

    if not Runtime.exists() or os.environ.get("CRYSTAL_DIFFUSION_WARM_UP") == "0":
        return
    with _WARM_UP_LOCK:
        if _WARM_UP["thread"] is not None:
            return
        _WARM_UP["thread"] = threading.Thread(target=_warm_up_models, name=_WARM_UP_THREAD, daemon=True)
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_quiet_warm_up)
    _WARM_UP["thread"].start()


def _quiet_warm_up(record: logging.LogRecord) -> bool:
    """Drop Streamlit's "missing ScriptRunContext" warnings from the warm-up thread: it has no page to
    draw a spinner on, by design."""
    return threading.current_thread().name != _WARM_UP_THREAD


def warm_up_seconds() -> float | None:
    """How long the warm-up took, or None while it runs (or before it started)."""
    return _WARM_UP["seconds"]


def _status() -> None:
    from .models import available_models, device_text, models_folder

    st.caption(f"**Runs on:** {device_text()}")
    models = available_models() + available_models("cdvae")
    if models:
        st.caption("**Models:** " + ", ".join(f"`{m.name}`" for m in models))
    else:
        st.caption(f"**Models:** none found in `{models_folder()}`")
