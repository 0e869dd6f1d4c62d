"""Page set-up shared by every page: page config, sidebar navigation, device and model status.

The app uses Streamlit's ``pages/`` folder (auto-discovered; ``app.py`` is the home
page). The built-in sidebar list is hidden in ``.streamlit/config.toml``
(``client.showSidebarNavigation = false``) and replaced by the links below, so the
home page reads "Home" instead of the file name "app".
"""
from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException

APP_TITLE = "Crystal Diffusion Explorer"
PAGES = (
    ("app.py", "Home", ":material/home:"),
    ("pages/1_Noise_schedules.py", "Noise schedules", ":material/show_chart:"),
    ("pages/2_Forward_process.py", "Forward process", ":material/blur_on:"),
    ("pages/3_Generate.py", "Generate", ":material/auto_awesome:"),
    ("pages/4_Batch_and_metrics.py", "Batch & metrics", ":material/grid_view:"),
    ("pages/5_Compare.py", "Compare", ":material/compare:"),
    ("pages/6_Train.py", "Train", ":material/model_training:"),
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


def setup_page(title: str) -> None:
    """Page config, sidebar navigation and status. Call first on every page.

    No ``page_icon``: Streamlit fetches Material-icon favicons from Google's font server,
    which fails in an offline classroom; the default favicon is served by the app itself.
    """
    st.set_page_config(page_title=f"{title} · {APP_TITLE}", layout="wide")
    with st.sidebar:
        st.markdown(f"### {APP_TITLE}")
        for path, label, page_icon in PAGES:
            if not page_link(path, label, page_icon):
                break  # running a single page on its own: no navigation to show
        st.divider()
        _status()


def _status() -> None:
    from .models import available_models, device_text, models_folder

    st.caption(f"**Runs on:** {device_text()}")
    models = available_models()
    if models:
        st.caption("**Models:** " + ", ".join(f"`{m.name}`" for m in models))
    else:
        st.caption(f"**Models:** none found in `{models_folder()}`")
