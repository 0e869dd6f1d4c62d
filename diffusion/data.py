"""Datasets of crystals: CDVAE-format CSV files (plain or gzip) and folders of CIF files.

A CSV has one row per crystal with columns ``material_id, cif, <properties...>`` (the
public CDVAE / DiffCSP release format). The crystals the shipped models were trained on live
in the repository's ``data/<name>/<split>.csv.gz`` (see data/README.md); ``download`` puts the
full public splits in ``data/downloads/<name>/``. A file's sha256 is that of its CSV text
(decompressed), so a card's hash names the same data whether the file is compressed or not.
Parsing CIFs is slow (~3-5 ms each), so a parsed file is cached to disk once, keyed by that
sha256, in plain tensors that load with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
import os
import sys
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .crystal import Crystal, CrystalError

SPACE_GROUP_COLUMN = "spacegroup.number"
CACHE_VERSION = 2
NON_PROPERTY_COLUMNS = {"", "material_id", "cif", "formula", "pretty_formula", "elements", SPACE_GROUP_COLUMN}
REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
DOWNLOAD_DIR = DATA_DIR / "downloads"
DATASET_ORDER = ("perov_5", "mp_20", "carbon_24")


class DatasetError(ValueError):
    """A dataset that cannot be read; the message says what to do."""


@dataclass(frozen=True)
class CrystalDataset:
    """A list of crystals plus what happened while reading them."""

    crystals: list[Crystal]
    source: str
    sha256: str = ""
    skipped: int = 0
    skipped_reasons: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.crystals)

    def __getitem__(self, index: int) -> Crystal:
        return self.crystals[index]

    def property_names(self) -> list[str]:
        return sorted(self.crystals[0].properties) if self.crystals else []

    def require_property(self, name: str) -> None:
        if name not in self.property_names():
            raise DatasetError(f"{self.source} has no property column '{name}'; available: {', '.join(self.property_names()) or 'none'}")

    def subset(self, indices) -> "CrystalDataset":
        return CrystalDataset([self.crystals[i] for i in indices], self.source, self.sha256)

    def elements(self) -> set[int]:
        return {int(z) for c in self.crystals for z in c.atomic_numbers.tolist()}


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def file_sha256(path: Path) -> str:
    """sha256 of the file's content, decompressed for ``.gz`` files."""
    digest = hashlib.sha256()
    with _open_binary(Path(path)) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_stem(path: Path) -> str:
    """``val`` for ``val.csv`` and ``val.csv.gz``."""
    return Path(path).name.split(".")[0]


def resolve_data_file(path: str | Path) -> Path:
    """The file a dataset path names: itself when it exists, else the file of the same dataset and split in
    the repository's ``data/`` (compressed or not) or in ``data/downloads/``.

    Cards written before the data moved into the repository name a folder outside it
    (``<somewhere>/<name>/<split>.csv``); ``<name>/<split>`` identifies the file.
    """
    path = Path(path)
    if path.exists():
        return path
    if not path.is_absolute() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    name, stem = path.parent.name, dataset_stem(path)
    for folder in (DATA_DIR, DOWNLOAD_DIR):
        for candidate in (folder / name / f"{stem}.csv.gz", folder / name / f"{stem}.csv"):
            if candidate.is_file():
                return candidate
    return path


def repository_relative(path: str | Path) -> str:
    """A data path as a card records it: relative to the repository when the file is inside it."""
    resolved = resolve_data_file(path).resolve()
    try:
        return str(resolved.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def available_dataset_files() -> dict[str, Path]:
    """Every dataset CSV in ``data/`` and ``data/downloads/`` (label ``<name>/<file>`` -> path), shipped first."""
    paths = [*sorted(DATA_DIR.glob("*/*.csv.gz")), *sorted(DATA_DIR.glob("*/*.csv")),
             *sorted(DOWNLOAD_DIR.glob("*/*.csv"))]
    rank = {name: i for i, name in enumerate(DATASET_ORDER)}
    paths.sort(key=lambda p: (DOWNLOAD_DIR in p.parents, rank.get(p.parent.name, len(rank)), p.name))
    out: dict[str, Path] = {}
    for path in paths:
        label = f"{path.parent.name}/{path.name}" + (" (downloaded)" if DOWNLOAD_DIR in path.parents else "")
        out.setdefault(label, path)
    return out


def cache_dir() -> Path:
    return Path(os.environ.get("CRYSTAL_DIFFUSION_CACHE", REPO_ROOT / ".cache"))


def standardize(crystal: Crystal) -> Crystal:
    """Niggli-reduced cell (CDVAE's preprocessing) with a right-handed lattice (det L > 0).

    Negating both L and F leaves every Cartesian position unchanged but flips det L,
    so the crystal itself (not its mirror image) is kept.
    """
    structure = crystal.to_structure().get_reduced_structure()
    reduced = Crystal.from_structure(structure, crystal.material_id, crystal.properties, crystal.space_group)
    if float(torch.linalg.det(reduced.lattice)) < 0:
        frac = torch.remainder(-reduced.frac_coords, 1.0)
        reduced = reduced.replace(lattice=-reduced.lattice, frac_coords=torch.where(frac >= 1.0, 0.0, frac))
    return reduced


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _parse_space_group(text: str | None) -> int:
    """International number 1..230 from a CSV cell; 0 ("unknown") for anything else."""
    value = _parse_float(text) if text else math.nan
    return int(value) if math.isfinite(value) and value == int(value) and 1 <= value <= 230 else 0


def _read_csv_rows(path: Path) -> tuple[list[Crystal], list[str]]:
    csv.field_size_limit(sys.maxsize)
    crystals, reasons = [], []
    with _open_binary(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "cif" not in reader.fieldnames:
            raise DatasetError(f"{path} is not a CDVAE-format CSV: it needs a 'cif' column (found {reader.fieldnames})")
        property_columns = [c for c in reader.fieldnames if c not in NON_PROPERTY_COLUMNS]
        try:
            from tqdm import tqdm
            rows = tqdm(reader, desc=f"parsing {path.name}", unit=" rows", mininterval=2, file=sys.stderr)
        except ImportError:  # pragma: no cover
            rows = reader
        for line_number, row in enumerate(rows, start=2):
            material_id = row.get("material_id") or str(line_number)
            properties = {c: _parse_float(row[c]) for c in property_columns}
            properties = {k: v for k, v in properties.items() if not math.isnan(v)}
            space_group = _parse_space_group(row.get(SPACE_GROUP_COLUMN))
            try:
                crystal = Crystal.from_cif(row["cif"] or "", material_id, properties, space_group)
                crystals.append(standardize(crystal))
            except (CrystalError, ValueError) as exc:
                reasons.append(f"line {line_number} ({material_id}): {exc}")
    return crystals, reasons


def _pack(crystals: list[Crystal]) -> dict:
    """Crystals -> dict of plain tensors/lists (safe for weights_only loading)."""
    prop_names = sorted({k for c in crystals for k in c.properties})
    return {
        "atomic_numbers": torch.cat([c.atomic_numbers for c in crystals]) if crystals else torch.zeros(0, dtype=torch.long),
        "frac_coords": torch.cat([c.frac_coords for c in crystals]) if crystals else torch.zeros(0, 3, dtype=torch.float64),
        "lattice": torch.stack([c.lattice for c in crystals]) if crystals else torch.zeros(0, 3, 3, dtype=torch.float64),
        "num_atoms": torch.tensor([c.num_atoms for c in crystals], dtype=torch.long),
        "space_group": torch.tensor([c.space_group for c in crystals], dtype=torch.long),
        "material_ids": [c.material_id for c in crystals],
        "property_names": prop_names,
        "properties": torch.tensor([[c.properties.get(p, math.nan) for p in prop_names] for c in crystals],
                                   dtype=torch.float64).reshape(len(crystals), len(prop_names)),
    }


def _unpack(packed: dict) -> list[Crystal]:
    crystals = []
    stops = torch.cumsum(packed["num_atoms"], 0).tolist()
    starts = [0] + stops[:-1]
    names = packed["property_names"]
    for i, (a, b) in enumerate(zip(starts, stops)):
        values = packed["properties"][i].tolist()
        crystals.append(Crystal(
            atomic_numbers=packed["atomic_numbers"][a:b].clone(),
            frac_coords=packed["frac_coords"][a:b].clone(),
            lattice=packed["lattice"][i].clone(),
            material_id=packed["material_ids"][i],
            properties={n: v for n, v in zip(names, values) if not math.isnan(v)},
            space_group=int(packed["space_group"][i]),
        ))
    return crystals


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_csv(path: str | Path, use_cache: bool = True) -> CrystalDataset:
    """Read a CDVAE-format CSV; unparsable rows are skipped and counted, not fatal."""
    path = resolve_data_file(path)
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path} (try `python -m diffusion download <name>`)")
    try:
        sha = file_sha256(path)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path} cannot be read: {exc}") from None
    cached = cache_dir() / f"{dataset_stem(path)}-{sha[:16]}-v{CACHE_VERSION}.pt"
    if use_cache and cached.is_file():
        try:
            packed = torch.load(cached, weights_only=True)
            return CrystalDataset(_unpack(packed), str(path), sha, packed["skipped"], packed["skipped_reasons"])
        except Exception:
            pass  # a broken cache is rebuilt below
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crystals, reasons = _read_csv_rows(path)
    if not crystals:
        raise DatasetError(f"{path} has no readable crystal rows ({len(reasons)} skipped)")
    if use_cache:
        _atomic_save({**_pack(crystals), "skipped": len(reasons), "skipped_reasons": reasons}, cached)
    return CrystalDataset(crystals, str(path), sha, len(reasons), reasons)


def load_cif_folder(folder: str | Path) -> CrystalDataset:
    """Every ``*.cif`` file of a folder; the file stem becomes the material id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"not a folder of CIF files: {folder}")
    files = sorted(folder.glob("*.cif"))
    if not files:
        raise DatasetError(f"no .cif files in {folder}")
    crystals, reasons = [], []
    for file in files:
        try:
            crystals.append(standardize(Crystal.from_cif(file.read_text(errors="replace"), file.stem)))
        except (CrystalError, ValueError) as exc:
            reasons.append(f"{file.name}: {exc}")
    if not crystals:
        raise DatasetError(f"none of the {len(files)} CIF files in {folder} could be read")
    return CrystalDataset(crystals, str(folder), "", len(reasons), reasons)


def load_dataset(path: str | Path) -> CrystalDataset:
    """A CSV file (plain or gzip) or a folder of CIFs."""
    return load_cif_folder(path) if Path(path).is_dir() else load_csv(path)


def concatenate(datasets: list[CrystalDataset]) -> CrystalDataset:
    return CrystalDataset([c for d in datasets for c in d.crystals], " + ".join(d.source for d in datasets),
                          ",".join(d.sha256 for d in datasets), sum(d.skipped for d in datasets))


def split_indices(size: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """Reproducible random (train, validation) index split."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(size)
    n_val = int(round(size * val_fraction))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


# Public release files (CDVAE, Xie et al. 2021, MIT licence; DiffCSP uses the same splits).
DOWNLOAD_URL = "https://raw.githubusercontent.com/txie-93/cdvae/main/data/{name}/{split}.csv"
DATASET_NAMES = ("perov_5", "carbon_24", "mp_20")


def download(name: str, dest: str | Path = DOWNLOAD_DIR, splits=("train", "val", "test")) -> list[Path]:
    """Fetch the public CDVAE CSV files of a dataset into ``dest/<name>/`` (the loader looks in data/downloads)."""
    import urllib.request

    if name not in DATASET_NAMES:
        raise DatasetError(f"unknown dataset '{name}'; choose one of {', '.join(DATASET_NAMES)}")
    out = Path(dest) / name
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split in splits:
        target = out / f"{split}.csv"
        url = DOWNLOAD_URL.format(name=name, split=split)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
        except Exception as exc:
            raise DatasetError(f"could not download {url}: {exc}") from None
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        written.append(target)
    return written
