"""A clone is the whole product: copied alone into an empty folder (no sibling data folders), the
repository's own data serves the space-group vote, templates, evaluation and the dataset pickers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _repository_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: what a clone of this working tree holds."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode()
        return [name for name in out.split("\0") if name and (ROOT / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".venv", ".cache", "runs", "static", ".git", "out"}
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                if p.is_file() and not (set(p.relative_to(ROOT).parts) & skip)]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("alone") / "crystal-diffusion-explorer"
    for name in _repository_files():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    assert not (folder.parent / "shared").exists()
    return folder


def _run(clone: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(clone),
           # parsed datasets are cached by content hash, so sharing the cache shares no file paths
           "CRYSTAL_DIFFUSION_CACHE": os.environ.get("CRYSTAL_DIFFUSION_CACHE", str(ROOT / ".cache"))}
    env.pop("CRYSTAL_DIFFUSION_CHECKPOINTS", None)
    return subprocess.run([sys.executable, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_clone_runs_its_own_code_and_data(clone):
    result = _run(clone, "-c", "import diffusion, diffusion.data as d; print(diffusion.__file__); print(d.DATA_DIR)")
    assert result.returncode == 0, result.stderr
    module, data = result.stdout.split()
    assert Path(module).is_relative_to(clone) and Path(data) == clone / "data"
    assert sorted(p.name for p in (clone / "data" / "mp_20").iterdir()) == ["train_part.csv.gz", "val.csv.gz"]


@pytest.mark.parametrize("extra", [["--space-group", "predicted", "--guidance", "2"], ["--template-step", "300"]],
                         ids=["predicted-group", "template"])
def test_sample_with_the_training_crystals(clone, tmp_path, extra):
    out = tmp_path / "out"
    result = _run(clone, "-m", "diffusion", "sample", "--checkpoint", "mp_20", "--composition", "GaAs",
                  "--sampler", "ddim", "--steps", "10", "--threads", "2", "--out", str(out), *extra)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "not here" not in result.stderr
    assert list(out.glob("*.cif")), result.stdout


def test_evaluate_rebuilds_the_validation_split(clone, tmp_path):
    report = tmp_path / "metrics.json"
    result = _run(clone, "-m", "diffusion", "evaluate", "--checkpoint", "perov_5_small", "--limit", "3",
                  "--sampler", "ddim", "--steps", "10", "--threads", "2", "--json", str(report))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(report.read_text())["n"] == 3


def test_dataset_pickers_offer_the_repository_data(clone):
    script = textwrap.dedent("""
        from streamlit.testing.v1 import AppTest
        forward = AppTest.from_file("pages/2_Forward_process.py", default_timeout=300).run()
        forward.radio(key="fwd.source").set_value("Dataset entry").run()
        assert not forward.exception, forward.exception
        print("forward:", "|".join(forward.selectbox(key="fwd.dataset").options))
        train = AppTest.from_file("pages/6_Train.py", default_timeout=300).run()
        assert not train.exception, train.exception
        print("train:", "|".join(train.selectbox(key="train.dataset").options))
    """)
    result = _run(clone, "-c", script)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    for page in ("forward", "train"):
        assert lines[page].split("|") == ["perov_5/val.csv.gz", "mp_20/train_part.csv.gz", "mp_20/val.csv.gz",
                                          "carbon_24/val.csv.gz"], lines


def test_console_script_is_the_cli():
    """`pip install -e .` (part of `make test` / `make run`) puts `crystal-diffusion` beside the interpreter."""
    script = Path(sys.executable).parent / "crystal-diffusion"
    assert script.is_file(), "run `make setup` (pip install -e .) first"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "sample" in result.stdout and "evaluate" in result.stdout
