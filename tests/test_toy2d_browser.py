"""The Diffusion in 2D page in a real browser (issue #22): the forward figure draws, a short training runs in
the page, the three reverse panels and the mixture draw, no error. Screenshots: ``screenshots/toy2d_*.png``."""
from __future__ import annotations

import pytest

from test_browser import SHOTS, _no_errors, _plots_drawn, _settle, app_url, browser  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def test_the_2d_page_trains_and_samples(app_url, browser):
    page = browser.new_page()
    page.goto(f"{app_url}/Diffusion_in_2D")
    # a fresh server's first page imports torch and friends: wait for the page itself, not just the frame
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=180_000)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stPlotlyChart\"]').length >= 2",
                           timeout=120_000)
    _settle(page)
    _plots_drawn(page)
    _no_errors(page)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "toy2d_forward.png"), full_page=True)
    steps = page.get_by_role("spinbutton", name="Optimizer steps")
    steps.fill("1500")
    steps.press("Enter")
    _settle(page)
    train = page.get_by_role("button", name="Train", exact=True)
    train.wait_for(timeout=120_000)
    train.click()
    page.wait_for_selector("text=MMD of the final samples", timeout=180_000)
    _settle(page)
    _plots_drawn(page)
    _no_errors(page)
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 7, "forward, histogram, loss, 3 samplers, mixture"
    page.screenshot(path=str(SHOTS / "toy2d_trained.png"), full_page=True)
    page.close()
