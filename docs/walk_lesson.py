"""Walk the 10-minute lesson of docs/teaching.md in a real browser and keep a screenshot of every step.

    python docs/walk_lesson.py [--layouts 100 150 projector] [--steps 0 1 2 3 4 5 6 7] [--out docs/images/lesson]

Starts ``streamlit run app.py`` on a free 127.0.0.1 port (with the background warm-up on), opens Debian's
chromium through Playwright in a window of 1280 x 800 CSS px at 100 % (at 150 % zoom the page lays out in
853 x 533 CSS px drawn at 1.5 device pixels each, as a zoomed browser does; projector mode is the URL's
``?projector=1``), and does what the lesson asks the teacher to do, step by step:

    0  Diffusion in 2D: drag t, press Train, scrub the reverse slider
    1  Noise schedules: linear and cosine ticked
    2  Forward process: SrTiO3 at t = 100, and its equation panels
    3  Generate: the SrTiO3 one-click example, Play, Pause, the slider to t ~ 300, and the update's panels
    4  Compare: DDPM against DDIM, the slider half way
    5  Relax with CHGNet on the generated crystal (skipped, with a note, when CHGNet is not installed)
    6  Train: Train with the page's defaults, wait until it has finished, Sample now
    7  Batch & metrics: Sample the batch with the page's defaults

Every picture is the browser's viewport (1280 x 800 device px), saved to ``<out>/<layout>/step<N>_<name>.png``
with a palette of 128 colours. At every step the page is checked: no equation panel wider than its column,
no table narrower than 200 px, scrolling sideways or cutting its cells' text, no Streamlit exception or error
box; any failure is printed and the script exits with 1 at the end. Text cut by a box too narrow for it,
text lying on other text (in the page and in the charts) and errors in the browser's console are printed as
warnings: they do not change the exit status, the pictures show whether they matter. Each step's seconds
are printed.
Needs chromium (/usr/bin/chromium), playwright, static/3Dmol-min.js and the shipped checkpoints
(``make browser-deps``, ``make static/3Dmol-min.js``).
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import CHROMIUM, CHROMIUM_ARGS, settle, streamlit_server  # noqa: E402

WIDTH, HEIGHT = 1280, 800
LAYOUTS = {"100": (1.0, False), "150": (1.5, False), "projector": (1.0, True)}
HEADER = 70   # CSS px kept free above an element scrolled to the top (Streamlit's header bar)
MIN_TABLE_WIDTH = 200
PALETTE = 128

# the checks, in the page
OVERFLOW = """() => Array.from(document.querySelectorAll('[class*="st-key-eqpanel"]')).flatMap(panel =>
  [panel, ...panel.querySelectorAll('.katex-display')].filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => (panel.innerText.split('\\n')[0] || '?') + ': ' + e.scrollWidth + ' > ' + e.clientWidth))"""

# a table is squeezed when it is narrow, when it scrolls sideways, or (st.dataframe draws on a canvas and cuts
# what does not fit) when the widest text of each column, measured in the grid's font, does not fit its width
SQUEEZED = f"""() => {{
  const out = [];
  const ctx = document.createElement('canvas').getContext('2d');
  for (const t of document.querySelectorAll('[data-testid="stDataFrame"], [data-testid="stTable"]')) {{
    const box = t.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;   // folded away, not squeezed
    const cells = Array.from(t.querySelectorAll('[role="columnheader"], [role="gridcell"], th, td'));
    const head = cells.slice(0, 2).map(c => c.textContent.trim()).join(' | ').slice(0, 50);
    const name = t.dataset.testid + ' "' + head + '"';
    if (box.width < {MIN_TABLE_WIDTH}) {{ out.push(name + ' only ' + Math.round(box.width) + ' px wide'); continue; }}
    const scroller = Array.from([t, ...t.querySelectorAll('.dvn-scroller, [data-testid="stTableStyledTable"], div')])
      .find(s => s.clientWidth > 0 && s.scrollWidth > s.clientWidth + 1
                 && /(auto|scroll)/.test(getComputedStyle(s).overflowX));
    if (scroller) {{
      out.push(name + ' scrolls sideways: ' + scroller.scrollWidth + ' > ' + scroller.clientWidth + ' px');
      continue;
    }}
    const holder = Array.from(t.querySelectorAll('*'))
      .find(e => getComputedStyle(e).getPropertyValue('--gdg-base-font-style'));
    const grid = t.querySelector('.dvn-scroller');
    if (!holder || !grid) continue;
    const css = getComputedStyle(holder);
    const v = n => css.getPropertyValue(n).trim();
    const pad = parseFloat(v('--gdg-cell-horizontal-padding')) || 8;
    const widest = {{}};
    for (const cell of t.querySelectorAll('[role="columnheader"], [role="gridcell"]')) {{
      // a number's cell holds the raw value, not the formatted one on screen: measure only words
      const number = /^[-+]?[0-9.]+(e[-+]?[0-9]+)?$/i.test(cell.textContent.trim());
      if (number && cell.getAttribute('role') === 'gridcell') continue;
      ctx.font = v(cell.getAttribute('role') === 'columnheader' ? '--gdg-header-font-style' : '--gdg-base-font-style')
                 + ' ' + v('--gdg-font-family');
      const column = cell.getAttribute('aria-colindex');
      widest[column] = Math.max(widest[column] || 0, ctx.measureText(cell.textContent).width);
    }}
    const need = Object.values(widest).reduce((sum, w) => sum + Math.ceil(w) + 2 * pad, 0);
    if (need > grid.clientWidth + 1)
      out.push(name + ' cuts its text: the columns need ' + need + ' px, it has ' + grid.clientWidth);
  }}
  return out;
}}"""

# st.dataframe fills its grid (and its accessible copy of the cells) a moment after the page has settled
TABLES_DRAWN = """() => Array.from(document.querySelectorAll('[data-testid="stDataFrame"]'))
  .filter(t => t.getBoundingClientRect().width > 0 && t.getBoundingClientRect().height > 0)
  .every(t => t.querySelector('[role="gridcell"]') && t.querySelector('.dvn-stack > div[style*="width"]'))"""
TABLES_EMPTY = """() => Array.from(document.querySelectorAll('[data-testid="stDataFrame"]'))
  .filter(t => t.getBoundingClientRect().width > 0 && t.getBoundingClientRect().height > 0
               && !t.querySelector('[role="gridcell"]'))
  .map(t => Math.round(t.getBoundingClientRect().width) + ' x ' + Math.round(t.getBoundingClientRect().height) + ' px: '
            + (t.querySelector('[role="columnheader"]') || {textContent: '?'}).textContent)"""

ERRORS = """() => Array.from(document.querySelectorAll(
    '[data-testid="stException"], [data-testid="stAlertContentError"]'))
  .map(e => e.dataset.testid + ': ' + e.innerText.slice(0, 300))"""

# warnings (printed, listed at the end, not failures): text cut by a box too narrow for it ("G.." on a projector)
# or lying on other text, in the page and in the charts' titles, legends and ticks
TEXT_CUT = """() => {
  const out = [];
  const boxes = [];
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim()) continue;
    if (el.closest('.katex, [data-testid="stDataFrame"], svg, script, style, [aria-hidden="true"]')) continue;
    if (el.getBoundingClientRect().width <= 2) continue;   // a 1 px label for screen readers, not on screen
    const range = document.createRange(); range.selectNodeContents(n);
    const r = range.getBoundingClientRect();
    if (r.width < 2 || r.height < 2) continue;
    let clip = el;
    while (clip && getComputedStyle(clip).overflowX === 'visible') clip = clip.parentElement;
    if (clip) {
      const c = clip.getBoundingClientRect();
      if (c.width > 2 && (r.right > c.right + 2 || r.left < c.left - 2))
        out.push('cut: "' + n.textContent.trim().slice(0, 50) + '" (' + Math.round(r.width) + ' px of text in '
                 + Math.round(c.width) + ')');
    }
    for (const line of range.getClientRects()) if (line.width > 2) boxes.push([n, line]);
  }
  const seen = new Set();
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, p] = boxes[i], [b, q] = boxes[j];
    if (a === b) continue;
    const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
    const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    const key = a.textContent + '|' + b.textContent;
    if (w > 3 && h > 3 && !seen.has(key)) {
      seen.add(key);
      out.push('overlap: "' + a.textContent.trim().slice(0, 40) + '" and "' + b.textContent.trim().slice(0, 40) + '"');
    }
  }
  return out;
}"""

CHART_TEXT = """() => {
  const out = [];
  for (const chart of document.querySelectorAll('[data-testid="stPlotlyChart"]')) {
    const box = chart.getBoundingClientRect();
    if (box.width < 2) continue;
    const texts = Array.from(chart.querySelectorAll('.main-svg text')).filter(t => t.textContent.trim())
      .map(t => [t, t.getBoundingClientRect()]).filter(([t, r]) => r.width > 1);
    const named = chart.querySelector('.gtitle') || chart.querySelector('.annotation-text') || {textContent: '?'};
    const title = named.textContent.slice(0, 40);
    for (const [t, r] of texts)
      if (r.right > box.right + 2 || r.left < box.left - 2 || r.top < box.top - 2)
        out.push('chart "' + title + '": "' + t.textContent.slice(0, 40) + '" runs out of the chart');
    for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
      const [a, p] = texts[i], [b, q] = texts[j];
      const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
      const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
      if (w > 2 && h > 2)
        out.push('chart "' + title + '": "' + a.textContent.slice(0, 30) + '" overlaps "'
                 + b.textContent.slice(0, 30) + '"');
    }
  }
  return out;
}"""

SCROLL_TO = """([el, offset]) => {
  el.scrollIntoView({block: 'start'});
  let p = el.parentElement;
  while (p && !(p.scrollHeight > p.clientHeight + 1 && /(auto|scroll)/.test(getComputedStyle(p).overflowY)))
    p = p.parentElement;
  (p || document.scrollingElement).scrollBy(0, -offset);
}"""

PLOTS_DRAWN = ("() => Array.from(document.querySelectorAll('[data-testid=\"stPlotlyChart\"]'))"
               ".every(c => c.querySelector('.main-svg'))")


class Walk:
    """One layout's browser page, where the pictures go and what failed."""

    def __init__(self, browser, url: str, layout: str, out: Path):
        zoom, projector = LAYOUTS[layout]
        self.context = browser.new_context(viewport={"width": int(WIDTH / zoom), "height": int(HEIGHT / zoom)},
                                           device_scale_factor=zoom)
        self.page = self.context.new_page()
        self.url, self.layout, self.projector = url, layout, projector
        self.out = out / layout
        self.out.mkdir(parents=True, exist_ok=True)
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.written: list[Path] = []
        self.step = -1
        self._seen: set[tuple[int, str]] = set()
        self._console: list[str] = []
        self.page.on("console", self._console_message)

    def _console_message(self, message) -> None:
        text = message.text
        webgl = "WebGL" in text and "GPU stall" not in text
        if webgl or (message.type == "error" and "Failed to load resource" not in text):
            self._console.append(f"{message.type}: {text[:200]}")

    # ------------------------------------------------------------ moving around

    def open(self, path: str, ready: str, query: str = "") -> None:
        """Load a page (a new session) and wait until ``ready`` (a selector) is on it and the script has
        finished: on busy cores the first run can start after ``settle`` has already looked."""
        parts = [q for q in (query, "projector=1" if self.projector else "") if q]
        self.page.goto(f"{self.url}/{path}" + (f"?{'&'.join(parts)}" if parts else ""))
        self.page.wait_for_selector(ready, state="attached", timeout=180_000)
        self.settle()

    def settle(self, timeout_s: float = 300) -> None:
        settle(self.page, timeout_s)

    def button(self, name: str):
        return self.page.get_by_role("button", name=name, exact=True)

    def scroll_to(self, locator, offset: int = HEADER) -> None:
        locator.first.wait_for(state="attached", timeout=60_000)
        locator.first.evaluate(f"(el) => ({SCROLL_TO})([el, {offset}])")
        self.page.wait_for_timeout(600)

    def heading(self, text: str):
        return self.page.locator("h1, h2, h3, h4, h5, h6").filter(has_text=text)

    def slider(self, label_start: str):
        return self.page.locator('[data-testid="stSlider"]').filter(has_text=label_start).first

    def drag_to(self, slider, fraction: float) -> None:
        """Drag the slider's thumb to a fraction of its track and let go, as a hand on a mouse does."""
        slider.scroll_into_view_if_needed()
        thumb = slider.locator('input[type="range"]').first.locator("xpath=../..")
        rail = slider.locator('div[style*="touch-action"]').first.bounding_box()
        box = thumb.bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        self.page.mouse.down()
        target = rail["x"] + 8 + fraction * (rail["width"] - 16)
        self.page.mouse.move(target, box["y"] + box["height"] / 2, steps=6)
        self.page.mouse.up()
        self.page.wait_for_timeout(500)
        self.settle()

    def slider_value(self, slider) -> str:
        return slider.locator('input[type="range"]').first.get_attribute("aria-valuetext") or ""

    def key_slider_to(self, slider, target: int, key: str, url_key: str = "t", max_presses: int = 400) -> int:
        """Step a slider with the arrow keys until it shows the value nearest ``target`` (the options may run
        either way); wait until the page has the new step in its URL."""
        handle = slider.locator('input[type="range"]').first
        handle.focus()
        value = int(self.slider_value(slider))
        for _ in range(max_presses):
            if value == target:
                break
            handle.press(key)
            new = int(self.slider_value(slider))
            if abs(new - target) >= abs(value - target) and new != value:
                handle.press("ArrowLeft" if key == "ArrowRight" else "ArrowRight")   # went past: step back
                new = int(self.slider_value(slider))
                value = new
                break
            if new == value:
                break
            value = new
        self.page.wait_for_function(f"() => new URLSearchParams(location.search).get('{url_key}') === '{value}'",
                                    timeout=120_000)
        self.settle()
        return value

    def rendered(self) -> list[str]:
        """What each 3D view (an iframe running crystal_view.js) last drew: "<view id>:<frame>"."""
        drawn = []
        for frame in self.page.frames[1:]:
            try:
                value = frame.evaluate("() => document.body && document.body.getAttribute('data-rendered')")
            except Exception:
                continue
            if value is not None:
                drawn.append(value)
        return drawn

    def views_drawn(self, count: int = 1, before: list[str] | None = None, timeout_s: float = 120) -> None:
        """Wait until ``count`` 3D views have drawn (a frame other than the ones in ``before``)."""
        deadline = time.time() + timeout_s
        while True:
            drawn = [v for v in self.rendered() if before is None or v not in before]
            if len(drawn) >= count:
                break
            if time.time() > deadline:
                self.failures.append(f"{self.layout}: only {len(drawn)} of {count} 3D views drawn")
                print(f"    FAIL only {len(drawn)} of {count} 3D views drawn")
                break
            self.page.wait_for_timeout(300)
        self.page.wait_for_timeout(800)

    # ------------------------------------------------------------ checks and pictures

    def check(self, where: str) -> None:
        """The failures (equation overflow, squeezed table, error) and the warnings (cut or overlapping text,
        browser console errors) of the page as it is now; each is printed once per step."""
        self.page.wait_for_function(PLOTS_DRAWN, timeout=60_000)
        try:
            self.page.wait_for_function(TABLES_DRAWN, timeout=15_000)
        except Exception:
            print(f"    note: tables without cells after 15 s (not measured): {self.page.evaluate(TABLES_EMPTY)}")
        self.page.wait_for_timeout(1000)   # the grids size their columns a moment after they fill
        for name, script in (("equation panel wider than its column", OVERFLOW), ("squeezed table", SQUEEZED),
                             ("error on the page", ERRORS)):
            for problem in self.page.evaluate(script):
                if self._new(f"{name}: {problem}"):
                    self.failures.append(f"{self.layout} {where}: {name}: {problem}")
                    print(f"    FAIL {name}: {problem}")
        console, self._console = self._console, []
        for problem in self.page.evaluate(TEXT_CUT) + self.page.evaluate(CHART_TEXT) + console:
            if self._new(problem):
                self.warnings.append(f"{self.layout} {where}: {problem}")
                print(f"    warn {problem}")

    def _new(self, problem: str) -> bool:
        if (self.step, problem) in self._seen:
            return False
        self._seen.add((self.step, problem))
        return True

    def runs_on(self) -> str:
        """The sidebar's "Runs on:" line (it is in the page even while the sidebar is folded)."""
        text = self.page.locator('[data-testid="stSidebar"]').text_content() or ""
        return re.search(r"Runs on:\s*([^\n]*?\))", text).group(1) if "Runs on:" in text else "?"

    def shot(self, name: str) -> None:
        from PIL import Image

        self.page.wait_for_function(PLOTS_DRAWN, timeout=60_000)
        self.page.mouse.move(1, HEIGHT // 2)   # no hover toolbar or tooltip in the picture
        self.page.wait_for_timeout(500)
        image = Image.open(io.BytesIO(self.page.screenshot())).convert("RGB")
        if image.width > WIDTH:
            image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
        path = self.out / f"{name}.png"
        image.convert("P", palette=Image.ADAPTIVE, colors=PALETTE).save(path, optimize=True)
        self.written.append(path)
        print(f"    {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({path.stat().st_size // 1024} KB)")

    def close(self) -> None:
        self.context.close()


# ---------------------------------------------------------------- the lesson, step by step

def step0(w: Walk) -> None:
    """Diffusion in 2D: drag t, Train (3,000 steps), scrub the reverse slider from T toward 0."""
    w.open("Diffusion_in_2D", '[data-testid="stSlider"]')
    forward = w.slider("Step t of the forward process")
    w.drag_to(forward, 1.0)        # all the way to T: N(0, 1)
    w.drag_to(forward, 0.3)        # and back to where the roll is half gone
    w.scroll_to(w.heading("Forward: noise the points"))
    w.check("step 0 forward")
    w.shot("step0_forward")
    w.button("Train").click()
    w.page.get_by_text("Trained 3000 steps in").wait_for(timeout=300_000)
    w.settle()
    w.scroll_to(w.heading("Train a tiny denoiser"))
    w.check("step 0 trained")
    w.shot("step0_train")
    reverse = w.slider("Step t of the reverse process")
    w.drag_to(reverse, 1.0)        # t = T: the same cloud for the three samplers
    w.drag_to(reverse, 0.04)       # t ~ 8: the roll nearly sculpted, the drift arrows at work
    w.scroll_to(reverse)
    w.check("step 0 reverse")
    w.shot("step0_reverse")
    mixture = w.page.locator('[data-testid="stPlotlyChart"]').last
    w.scroll_to(mixture, offset=HEADER + 20)   # the two models and their table
    w.check("step 0 mixture")
    w.shot("step0_mixture")


def step1(w: Walk) -> None:
    """Noise schedules: linear and cosine (the page's default choice)."""
    w.open("Noise_schedules", '[data-testid="stTable"] td')
    w.page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .main-svg').length >= 5",
                             timeout=120_000)
    chosen = w.page.locator('[data-testid="stMultiSelect"]').first.inner_text()
    if "linear" not in chosen or "cosine" not in chosen:
        w.failures.append(f"{w.layout} step 1: linear and cosine are not both ticked: {chosen!r}")
    w.scroll_to(w.page.locator('[data-testid="stMultiSelect"]'))
    w.check("step 1")
    w.shot("step1_schedules")
    w.scroll_to(w.page.locator('[data-testid="stPlotlyChart"]').nth(1))   # signal and noise (log SNR beside it)
    w.shot("step1_schedules_plots")


def _press(w: Walk, page: str, ready: str, button: str, result: str, timeout_s: int, views: int,
           state: str = "visible") -> None:
    """Open ``page`` (a new session), press ``button`` and wait for ``result`` and ``views`` drawn 3D views."""
    w.open(page, ready)
    w.button(button).click()
    w.page.wait_for_selector(result, state=state, timeout=timeout_s * 1000)
    w.settle()
    w.views_drawn(views)


def _equations(w: Walk, heading: str, step: int, picture: str) -> None:
    """Scroll to the equation panels under ``heading``, check them and take their picture."""
    w.scroll_to(w.heading(heading))
    w.page.wait_for_selector('[class*="st-key-eqpanel"] .katex', timeout=60_000)
    w.check(f"step {step} equations")
    w.shot(picture)


def step2(w: Walk) -> None:
    """Forward process: SrTiO3 (the first example), t from 0 to 100; the equation panels at t = 100."""
    w.open("Forward_process", '[data-testid="stSlider"]')
    slider = w.slider("Step t of the forward process")
    slider.wait_for(timeout=60_000)
    if w.slider_value(slider) != "0":
        w.failures.append(f"{w.layout} step 2: the forward slider does not start at 0")
    before = w.rendered()
    w.key_slider_to(slider, 100, "ArrowRight")
    w.views_drawn(1, before)
    w.scroll_to(slider, offset=HEADER + 40)   # the schedule row above it stays in sight
    w.check("step 2 t = 100")
    w.shot("step2_forward")
    _equations(w, "The equations at t = 100", 2, "step2_forward_equations")


def _generate_srtio3(w: Walk) -> None:
    _press(w, "Generate", '.st-key-gen-example-srtio3 button', "SrTiO3", "#gen-view", 300, views=1,
           state="attached")


def step3(w: Walk) -> None:
    """Generate: the SrTiO3 example, Play for a moment, Pause, the slider to t ~ 300; the update's panels."""
    _generate_srtio3(w)
    w.button("Play").click()
    w.page.wait_for_timeout(2500)
    w.button("Pause").click()
    w.settle()
    slider = w.slider("Step t of the reverse process")
    # the options run from T (left) to 0 (right): ArrowLeft goes back toward noise
    t = int(w.slider_value(slider))
    before = w.rendered()
    t = w.key_slider_to(slider, 300, "ArrowLeft" if t < 300 else "ArrowRight")
    w.views_drawn(1, before)
    w.scroll_to(w.page.locator("#gen-view"), offset=HEADER - 20)
    w.check(f"step 3 t = {t}")
    w.shot("step3_generate")
    _equations(w, "The update at t =", 3, "step3_generate_equations")


def step4(w: Walk) -> None:
    """Compare: DDPM against DDIM (the page's defaults), the shared slider half way."""
    _press(w, "Compare", '.st-key-cmp-go button', "Compare", '[data-testid="stSlider"]', 300, views=2)
    slider = w.slider("Step t of both reverse processes")
    before = w.rendered()
    w.drag_to(slider, 0.5)
    w.views_drawn(2, before)
    w.scroll_to(slider, offset=HEADER + 40)
    w.check("step 4")
    w.shot("step4_compare")
    w.scroll_to(w.page.locator('[data-testid="stPlotlyChart"]'))
    w.check("step 4 plots")
    w.shot("step4_compare_plots")


def step5(w: Walk) -> None:
    """Relax with CHGNet: the generated SrTiO3 (the one-click example again: same settings, from the cache)."""
    if importlib.util.find_spec("chgnet") is None:
        print("    note: CHGNet is not installed (pip install chgnet), so step 5 is skipped")
        return
    _generate_srtio3(w)
    w.scroll_to(w.heading("Relax with a universal potential"))
    w.button("Relax with CHGNet").click()
    w.page.get_by_text("Relaxed SrTiO3").first.wait_for(timeout=600_000)
    w.settle()
    w.views_drawn(2)
    w.scroll_to(w.button("Relax with CHGNet"), offset=HEADER + 40)
    w.check("step 5")
    w.shot("step5_relax")
    w.scroll_to(w.page.locator('[data-testid="stTable"]').last, offset=HEADER + 40)   # energy, force, cell
    w.shot("step5_relax_numbers")


def step6(w: Walk) -> None:
    """Train: Train with the defaults, wait for Finished, Sample now."""
    w.open("Train", '.st-key-train-go button')
    before = w.runs_on()
    w.button("Train").click()
    w.page.wait_for_selector("text=Finished", timeout=600_000)
    w.settle()
    w.scroll_to(w.heading("Training loss"))
    w.check("step 6 trained")
    w.shot("step6_train")
    w.button("Sample now").click()
    w.page.wait_for_selector("#gen-view, iframe", state="attached", timeout=300_000)
    w.settle()
    w.views_drawn(1)
    w.scroll_to(w.page.get_by_text("Sampled", exact=True).first)
    w.check("step 6 sample")
    w.shot("step6_sample")
    w.open("Noise_schedules", '[data-testid="stPlotlyChart"]')
    if w.runs_on() != before:   # the trainer's one torch thread must not stick to later sessions
        w.failures.append(f"{w.layout} step 6: the sidebar said {before!r} before training, {w.runs_on()!r} after")


def step7(w: Walk) -> None:
    """Homework, Batch & metrics: Sample the batch with the page's defaults (16 NaCl from mp_20)."""
    _press(w, "Batch_and_metrics", '.st-key-batch-go button', "Sample the batch", '[data-testid="stMetric"]', 600,
           views=1)
    w.scroll_to(w.page.locator('[data-testid="stMetric"]'), offset=HEADER + 60)
    w.check("step 7")
    w.shot("step7_batch")
    w.scroll_to(w.heading("Gallery"))
    w.shot("step7_batch_gallery")
    w.scroll_to(w.page.locator('[data-testid="stDataFrame"]'))
    w.check("step 7 table")
    w.shot("step7_batch_table")


STEPS = {0: step0, 1: step1, 2: step2, 3: step3, 4: step4, 5: step5, 6: step6, 7: step7}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layouts", nargs="+", choices=list(LAYOUTS), default=list(LAYOUTS))
    parser.add_argument("--steps", nargs="+", type=int, choices=list(STEPS), default=list(STEPS))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "lesson")
    args = parser.parse_args(argv)
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    for need in (Path(CHROMIUM), ROOT / "static" / "3Dmol-min.js", ROOT / "checkpoints" / "mp_20.pt"):
        if not need.is_file():
            sys.exit(f"{need} is missing (see the Makefile: browser-deps, static/3Dmol-min.js)")
    from playwright.sync_api import sync_playwright

    env = {**{k: v for k, v in os.environ.items() if k != "CRYSTAL_DIFFUSION_CHECKPOINTS"},
           "CRYSTAL_DIFFUSION_WARM_UP": "1"}
    failures: list[str] = []
    warnings: list[str] = []
    written: list[Path] = []
    started_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, streamlit_server(env, Path(tmp) / "server.log") as url, \
            sync_playwright() as playwright:
        print(f"app at {url}")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for layout in args.layouts:
            walk = Walk(browser, url, layout, out)
            started_layout = time.perf_counter()
            print(f"layout {layout}:")
            for number in args.steps:
                started = time.perf_counter()
                walk.step = number
                print(f"  step {number}: {STEPS[number].__doc__.splitlines()[0]}")
                try:
                    STEPS[number](walk)
                except Exception as exc:   # a step that could not be walked: note it, take a picture, go on
                    walk.failures.append(f"{layout} step {number}: the walk failed: {type(exc).__name__}: "
                                         f"{str(exc).splitlines()[0] if str(exc) else ''}")
                    print(f"    FAIL the walk: {exc}")
                    try:
                        walk.shot(f"step{number}_FAILED")
                    except Exception:
                        pass
                print(f"  step {number}: {time.perf_counter() - started:.1f} s")
            print(f"layout {layout}: {time.perf_counter() - started_layout:.1f} s")
            failures += walk.failures
            warnings += walk.warnings
            written += walk.written
            walk.close()
        browser.close()
    total = sum(p.stat().st_size for p in written)
    print(f"{len(written)} pictures, {total / 1e6:.2f} MB, in {time.perf_counter() - started_all:.0f} s")
    if warnings:
        print(f"{len(warnings)} warning(s) (cut or overlapping text, console errors; look at the pictures):")
        for warning in warnings:
            print(f"  {warning}")
    if failures:
        print(f"{len(failures)} problem(s):")
        for failure in failures:
            print(f"  {failure}")
        return 1
    print("no clipped equation, no squeezed table, no error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
