"""Compare's "Model family: diffusion vs CDVAE" in a real browser (issue #20, item 3): the shipped perov_5
diffusion model on the left and the shipped perov_5_cdvae on the right decode SrTiO3 under one slider; both 3D
views draw, the step buttons move both sides, the numbers tables and the overlaid diagnostics show, no error.
Screenshots: ``screenshots/compare_family_*.png``."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, browser_requirements, settle, streamlit_server

from test_browser import SHOTS, _canvas_ink, _no_errors, _plots_drawn

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("perov_5", "perov_5_cdvae")
DIFFUSION_STEPS = 50     # DDIM steps on the left
LANGEVIN_STEPS = 2       # per level on the right: 100 steps for the model's 50 levels keeps the test short

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    browser_requirements()
    missing = [name for name in MODELS if not (ROOT / "checkpoints" / f"{name}.pt").is_file()]
    if missing:
        pytest.skip(f"no shipped {', '.join(missing)} in checkpoints/")
    folder = tmp_path_factory.mktemp("family_models")
    for name in MODELS:
        for suffix in (".pt", ".json"):
            shutil.copy(ROOT / "checkpoints" / f"{name}{suffix}", folder / f"{name}{suffix}")
    env = {**os.environ, "CRYSTAL_DIFFUSION_CHECKPOINTS": str(folder), "CRYSTAL_DIFFUSION_WARM_UP": "0"}
    with streamlit_server(env, tmp_path_factory.mktemp("streamlit") / "server.log") as url:
        yield url


def _fill(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label)
    box.fill(str(value))
    box.press("Enter")
    settle(page, 60)


def _rendered(page, index: int) -> str:
    return page.frame_locator("iframe").nth(index).locator("body").get_attribute("data-rendered", timeout=60_000) or ""


def test_diffusion_against_cdvae_under_one_slider(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 2600}).new_page()
        page.goto(f"{server}/Compare")
        page.get_by_text("Model family: diffusion vs CDVAE").wait_for(timeout=240_000)
        settle(page, 240)
        page.get_by_text("Model family: diffusion vs CDVAE").click()
        page.get_by_role("spinbutton", name="Langevin steps per noise level").wait_for(timeout=60_000)
        settle(page, 60)
        _no_errors(page)
        _fill(page, "Langevin steps per noise level", LANGEVIN_STEPS)
        _fill(page, "Steps (1 to T = 1000)", DIFFUSION_STEPS)
        page.get_by_role("button", name="Compare").click()
        slider = page.locator('[data-testid="stSlider"]').first
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=300_000)
        settle(page, 300)
        _no_errors(page)
        _plots_drawn(page)
        assert page.get_by_text("Left: diffusion perov_5", exact=False).count() >= 1
        assert page.get_by_text("Right: CDVAE perov_5_cdvae", exact=False).count() >= 1
        assert _canvas_ink(page, 0) > 0.01 and _canvas_ink(page, 1) > 0.01, "a blank 3D view"
        assert page.locator('[data-testid="stTable"]').count() == 2, "each side's numbers"
        at_end = (_rendered(page, 0), _rendered(page, 1))
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "compare_family_end.png"), full_page=True)

        page.locator('.st-key-cmp-first button').first.click()
        settle(page, 120)
        page.frame_locator("iframe").nth(1).locator(f'body:not([data-rendered="{at_end[1]}"])').wait_for(
            state="attached", timeout=60_000)
        _no_errors(page)
        assert _rendered(page, 0) != at_end[0] and _rendered(page, 1) != at_end[1], "both sides follow the slider"
        assert "1000" in (slider.text_content() or ""), "the start of the run: t = T"
        page.screenshot(path=str(SHOTS / "compare_family_start.png"), full_page=True)
        browser.close()
