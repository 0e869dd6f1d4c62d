"""The Open a trajectory page in a real browser (issue #21): a file of every format the readers take, uploaded
through the page's file field, draws its crystal in the 3D view with no error, and a hostile file gets a
message, not a traceback. Screenshots go to ``screenshots/open_<format>.png``."""
from __future__ import annotations

import io
import zipfile

import pytest

from test_browser import SHOTS, _canvas_ink, _no_errors, _settle, app_url, browser  # noqa: F401  (fixtures)
from test_trajectory_files import srtio3, valid_files

pytestmark = pytest.mark.browser


def _cif_zip() -> bytes:
    from pymatgen.io.cif import CifWriter

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for k, scale in enumerate((1.08, 1.04, 1.0)):
            structure = srtio3()
            structure.scale_lattice(structure.volume * scale)
            archive.writestr(f"frame_{k}.cif", str(CifWriter(structure)))
    return buffer.getvalue()


def _upload(page, name: str, data: bytes) -> None:
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}])


def test_every_format_opens_in_the_page(app_url, browser, tmp_path):
    files = {**valid_files(tmp_path), "frames.zip": _cif_zip()}
    page = browser.new_page()
    page.goto(f"{app_url}/Open_a_trajectory")
    _settle(page)
    _no_errors(page)
    for name, data in files.items():
        _upload(page, name, data)
        try:
            # the File box (a searchable select: its value is an input's) names the newest file
            page.wait_for_function(f"() => Array.from(document.querySelectorAll('input[aria-label=File]'))"
                                   f".some(box => box.value.startsWith({name!r}))", timeout=60_000)
        except Exception:
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "open_failed.png"), full_page=True)
            raise
        _settle(page)
        _no_errors(page)
        assert _canvas_ink(page) > 0.01, f"{name}: the 3D view is blank"
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"open_{name.replace('.', '_')}.png"), full_page=True)
    marker = tmp_path / "owned"
    hostile = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()   # a pickle that would run a shell command
    _upload(page, "eval_gen.pt", hostile)
    page.wait_for_selector('[data-testid="stAlertContentError"]', timeout=60_000)
    message = page.locator('[data-testid="stAlertContentError"]').first.inner_text()
    assert "eval_gen.pt" in message and "Traceback" not in message
    assert page.locator('[data-testid="stException"]').count() == 0
    assert not marker.exists(), "the pickle ran"
    page.close()
