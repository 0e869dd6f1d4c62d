"""The Latent space page in a real browser (issue #20, item 3) with a real CDVAE model (the shipped
``checkpoints/perov_5_cdvae.pt``, else the one training in ``runs/cdvae/``, copied to a folder of its own):
the map draws, a walk from A to B decodes and its 3D view follows the slider, the property optimisation draws
its path and the crystals decoded along it, no error. Screenshots: ``screenshots/latent_*.png``."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, browser_requirements, settle, streamlit_server

from test_browser import SHOTS, _canvas_ink, _no_errors, _plots_drawn

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 1280
MODELS = (ROOT / "checkpoints" / "perov_5_cdvae.pt", ROOT / "runs" / "cdvae" / "perov_5_cdvae.pt")
LANGEVIN_STEPS = 2      # per level: 100 steps for the model's 50 levels keeps the test short on a busy CPU

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    browser_requirements()
    model = next((path for path in MODELS if path.is_file() and path.with_suffix(".json").is_file()), None)
    if model is None:
        pytest.skip("no trained perov_5 CDVAE model (checkpoints/ or runs/cdvae/)")
    folder = tmp_path_factory.mktemp("cdvae_models")
    for suffix in (".pt", ".json"):
        shutil.copy(model.with_suffix(suffix), folder / f"perov_5_cdvae{suffix}")
    env = {**os.environ, "CRYSTAL_DIFFUSION_CHECKPOINTS": str(folder), "CRYSTAL_DIFFUSION_WARM_UP": "0"}
    with streamlit_server(env, tmp_path_factory.mktemp("streamlit") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": WIDTH, "height": 3400}).new_page()
        yield page
        browser.close()


def _shot(page, name: str) -> None:
    _plots_drawn(page)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"latent_{name}.png"), full_page=True)


def _rendered(page, index: int) -> str:
    return page.frame_locator("iframe").nth(index).locator("body").get_attribute("data-rendered", timeout=60_000) or ""


def _clipped_labels(page) -> list[str]:
    """Widget labels cut by their column (text wider than its box)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid="stWidgetLabel"] p'))
        .filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.innerText)""")


def test_map_walk_and_optimisation(server, page):
    page.goto(f"{server}/Latent_space")
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=240_000)
    settle(page, 240)
    _no_errors(page)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 1, "the map"
    _plots_drawn(page)
    assert "% of the variance" in (page.locator(".xtitle").first.text_content() or "")
    assert not _clipped_labels(page), _clipped_labels(page)
    _shot(page, "map")

    page.get_by_text("an element they contain").click()
    page.get_by_role("combobox", name="Element").wait_for(timeout=60_000)
    settle(page, 60)
    _no_errors(page)
    assert page.locator(".legendtext").filter(has_text="contains").count() == 1
    page.locator('[data-testid="stPlotlyChart"]').first.screenshot(path=str(SHOTS / "latent_map_element.png"))

    steps = page.get_by_role("spinbutton", name="Langevin steps per level")
    steps.fill(str(LANGEVIN_STEPS))
    steps.press("Enter")
    settle(page, 60)
    page.get_by_role("button", name="Decode the path").click()
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Point on the walk")
    slider.wait_for(timeout=300_000)
    settle(page, 300)
    _no_errors(page)
    assert _canvas_ink(page, 0) > 0.01, "the walk's 3D view is blank"
    first = _rendered(page, 0)
    assert first.endswith(":0"), first
    _shot(page, "walk")

    thumb = slider.locator('input[type="range"]').first
    thumb.focus()
    for _ in range(3):
        thumb.press("ArrowRight")
    page.wait_for_function("() => new URLSearchParams(location.search).get('point') === '3'", timeout=60_000)
    settle(page, 60)
    page.frame_locator("iframe").nth(0).locator('body[data-rendered$=":3"]').wait_for(state="attached", timeout=60_000)
    assert page.get_by_text("Point 3:", exact=False).count() == 1
    _no_errors(page)
    _shot(page, "walk_point3")

    page.get_by_role("button", name="Optimise").click()
    page.locator('[data-testid="stPlotlyChart"]').nth(1).wait_for(timeout=300_000)
    settle(page, 300)
    _no_errors(page)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 2, "the map and the property plot"
    assert _canvas_ink(page, 1) > 0.005, "the crystals decoded along the path are blank"
    assert not _clipped_labels(page), _clipped_labels(page)
    _shot(page, "optimised")
    page.locator('[data-testid="stPlotlyChart"]').first.screenshot(path=str(SHOTS / "latent_map_with_paths.png"))


@pytest.mark.slow  # the page's layout in projector mode; the map / walk / optimise test runs in make test
def test_projector_mode(server, page):
    """The same page in projector mode (larger type, taller views): the walk and the path come from the server's
    cache (same settings as above), and no label is cut."""
    page.set_viewport_size({"width": WIDTH, "height": 4200})
    page.goto(f"{server}/Latent_space?projector=1")
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=240_000)
    settle(page, 240)
    steps = page.get_by_role("spinbutton", name="Langevin steps per level")
    steps.fill(str(LANGEVIN_STEPS))
    steps.press("Enter")
    settle(page, 60)
    page.get_by_role("button", name="Decode the path").click()
    page.locator('[data-testid="stSlider"]').filter(has_text="Point on the walk").wait_for(timeout=300_000)
    settle(page, 300)
    page.get_by_role("button", name="Optimise").click()
    page.locator('[data-testid="stPlotlyChart"]').nth(1).wait_for(timeout=300_000)
    settle(page, 300)
    _no_errors(page)
    assert _canvas_ink(page, 0) > 0.01 and _canvas_ink(page, 1) > 0.005
    assert not _clipped_labels(page), _clipped_labels(page)
    _shot(page, "projector")
