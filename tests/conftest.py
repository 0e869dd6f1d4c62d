"""Shared fixtures: small real datasets and tiny trained checkpoints (seconds to build)."""
from __future__ import annotations

import contextlib
import gzip
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
PEROV_CSV = DATA / "perov_5" / "val.csv.gz"
CARBON_CSV = DATA / "carbon_24" / "val.csv.gz"
MP20_CSV = DATA / "mp_20" / "val.csv.gz"

# AppTest runs pages in this process: no background warm-up thread (the browser tests turn it on for their server)
os.environ.setdefault("CRYSTAL_DIFFUSION_WARM_UP", "0")
torch.set_num_threads(int(os.environ.get("CRYSTAL_TEST_THREADS", max(1, min(2, os.cpu_count() or 1)))))


@pytest.fixture(scope="session")
def perov_rows(tmp_path_factory) -> Path:
    """The first 40 rows of Perov-5 as a small CSV (a real file in the CDVAE format)."""
    import csv
    csv.field_size_limit(sys.maxsize)
    out = tmp_path_factory.mktemp("data") / "perov_small.csv"
    with gzip.open(PEROV_CSV, "rt", newline="") as src, open(out, "w", newline="") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst)
        for i, row in enumerate(reader):
            if i > 40:
                break
            writer.writerow(row)
    return out


def _train_tiny(data: Path, out: Path, task: str, steps: int, extra: tuple[str, ...] = ()) -> Path:
    from diffusion.cli import main

    args = ["train", "--data", str(data), "--out", str(out), "--task", task, "--hidden", "32", "--layers", "2",
            "--frequencies", "8", "--num-steps", "50", "--batch-size", "16", "--max-steps", str(steps),
            "--val-every", "10", "--checkpoint-every", "10", "--run-dir", str(out.parent / f"run-{out.stem}"),
            "--quiet", *extra]
    assert main(args) == 0
    return out


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory, perov_rows) -> Path:
    """A folder with tiny checkpoints: tiny_csp (property-conditioned CSP) and tiny_gen (ab initio)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    _train_tiny(perov_rows, folder / "tiny_csp.pt", "csp", 20, ("--property", "heat_ref"))
    _train_tiny(perov_rows, folder / "tiny_gen.pt", "gen", 20)
    return folder


@pytest.fixture(scope="session")
def tiny_csp(checkpoint_dir):
    from diffusion.checkpoints import load_model
    return load_model(checkpoint_dir / "tiny_csp.pt")


@pytest.fixture(scope="session")
def tiny_gen(checkpoint_dir):
    from diffusion.checkpoints import load_model
    return load_model(checkpoint_dir / "tiny_gen.pt")


@pytest.fixture
def app_env(checkpoint_dir, monkeypatch):
    """The app's pages see the tiny test checkpoints (not the shipped ones)."""
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(checkpoint_dir))
    return checkpoint_dir


@pytest.fixture(scope="session")
def cdvae_checkpoint_dir(tmp_path_factory, checkpoint_dir, perov_rows) -> Path:
    """The tiny checkpoints plus tiny_cdvae (a CDVAE with a heat_ref head, 5 noise levels, two training steps)."""
    import shutil

    from diffusion.cli import main

    folder = tmp_path_factory.mktemp("checkpoints_cdvae")
    for path in checkpoint_dir.glob("*.*"):
        shutil.copy2(path, folder / path.name)
    assert main(["train", "--family", "cdvae", "--data", str(perov_rows), "--out", str(folder / "tiny_cdvae.pt"),
                 "--property", "heat_ref", "--hidden", "16", "--layers", "1", "--encoder-layers", "1",
                 "--latent-dim", "4", "--num-levels", "5", "--max-steps", "2", "--batch-size", "8", "--val-every", "2",
                 "--run-dir", str(folder.parent / "run-tiny_cdvae"), "--quiet"]) == 0
    return folder


@pytest.fixture
def app_env_cdvae(cdvae_checkpoint_dir, monkeypatch):
    """The app's pages see the tiny test checkpoints and tiny_cdvae."""
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(cdvae_checkpoint_dir))
    return cdvae_checkpoint_dir


@contextlib.contextmanager
def torch_threads(count: int):
    """torch's process-wide thread count set to ``count`` inside the block, put back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test (tests that compare numbers to the last bits, or time-critical ones on a
    shared 2-core machine, use it)."""
    with torch_threads(1):
        yield


def shown_tables(at) -> list:
    """Every ``st.table`` of an AppTest page as a DataFrame of the text the reader sees (the app escapes
    Markdown in its static tables: ``P4\\_2/mnm`` is shown as ``P4_2/mnm``)."""
    import re

    unescape = lambda value: re.sub(r"\\(.)", r"\1", str(value))   # noqa: E731
    return [t.value.map(unescape).rename(columns=unescape) for t in at.table]


def numbers_tables(at) -> list[dict[str, str]]:
    """The quantity -> value tables (numbers of a structure) of an AppTest page, in page order."""
    return [dict(zip(t["quantity"], t["value"])) for t in shown_tables(at) if list(t.columns) == ["quantity", "value"]]
