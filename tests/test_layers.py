"""The layering rules: the UI reaches the core through one door, the core never imports Streamlit, pages do
not import each other, and no UI module grows past what one can read in a sitting."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_FILES = [*sorted((ROOT / "explorer").glob("*.py")), *sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"]
# the explorer modules that belong to one page each (shared components are the rest)
PAGE_MODULES = {
    "generate": {"generate", "generate_controls", "generate_state"},
    "compare": {"compare", "comparison"},
    "batch": {"batch", "batch_setting"},
    "open": {"opened"},
    "toy2d": {"toy2d_page", "toy2d_figures"},
    "forward": {"forward"},
    "train": {"live_training", "live_figures"},
    "home": {"home"},
    "latent": {"latent_page", "latent_runs", "latent_figures"},
}
MAX_UI_LINES = 400


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, level) of every import in a file; level > 0 for relative imports."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level))
        elif isinstance(node, ast.Import):
            out.extend((alias.name, 0) for alias in node.names)
    return out


def test_the_ui_imports_only_diffusion_api():
    offenders = [f"{path.relative_to(ROOT)}: {module}" for path in UI_FILES for module, level in _imports(path)
                 if level == 0 and (module == "diffusion" or module.startswith("diffusion.")) and module != "diffusion.api"]
    assert not offenders, offenders


def test_the_core_never_imports_streamlit():
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "diffusion").rglob("*.py")
                 if any(module.split(".")[0] == "streamlit" for module, _ in _imports(path))]
    assert not offenders, offenders


def test_no_page_module_imports_another_pages_module():
    owner = {module: page for page, modules in PAGE_MODULES.items() for module in modules}
    offenders = []
    for path in (ROOT / "explorer").glob("*.py"):
        page = owner.get(path.stem)
        for module, level in _imports(path):
            name = module.split(".")[-1] if level else (module.split(".")[1] if module.startswith("explorer.") else "")
            if page and owner.get(name) not in (None, page):
                offenders.append(f"{path.name} imports {name}")
    assert not offenders, offenders


def test_ui_modules_stay_readable():
    long = {str(p.relative_to(ROOT)): n for p in UI_FILES if (n := len(p.read_text().splitlines())) > MAX_UI_LINES}
    assert not long, long
