import csv
import sys

import pytest

from diffusion.data import DatasetError, load_cif_folder, load_csv, split_indices, standardize
from diffusion.crystal import Crystal


def test_perov_rows_load_and_cache(perov_rows, tmp_path, monkeypatch):
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CACHE", str(tmp_path / "cache"))
    first = load_csv(perov_rows)
    assert len(first) == 40 and first.skipped == 0
    assert "heat_ref" in first.property_names()
    assert list((tmp_path / "cache").glob("*.pt")), "parsed file must be cached"
    again = load_csv(perov_rows)
    assert [c.material_id for c in again.crystals] == [c.material_id for c in first.crystals]
    assert all(float(abs(a.frac_coords - b.frac_coords).max()) == 0 for a, b in zip(first.crystals, again.crystals))


def test_standardized_cells_are_right_handed(perov_rows):
    for c in load_csv(perov_rows).crystals:
        import torch
        assert float(torch.linalg.det(c.lattice)) > 0


def test_bad_rows_are_skipped_and_counted(perov_rows, tmp_path, monkeypatch):
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CACHE", str(tmp_path / "cache"))
    csv.field_size_limit(sys.maxsize)
    rows = list(csv.reader(open(perov_rows)))
    rows[3][rows[0].index("cif")] = "this is not a CIF"
    rows[5][rows[0].index("cif")] = ""
    broken = tmp_path / "broken.csv"
    csv.writer(open(broken, "w", newline="")).writerows(rows)
    data = load_csv(broken)
    assert data.skipped == 2 and len(data) == 38
    assert "line" in data.skipped_reasons[0]


def test_missing_file_and_columns(tmp_path, perov_rows):
    with pytest.raises(DatasetError, match="not found"):
        load_csv(tmp_path / "nope.csv")
    no_cif = tmp_path / "no_cif.csv"
    no_cif.write_text("material_id,formula\n1,NaCl\n")
    with pytest.raises(DatasetError, match="'cif' column"):
        load_csv(no_cif)
    with pytest.raises(DatasetError, match="no property column 'band_gap'"):
        load_csv(perov_rows).require_property("band_gap")


def test_cif_folder(tmp_path, perov_rows):
    data = load_csv(perov_rows)
    for c in data.crystals[:3]:
        (tmp_path / f"{c.material_id}.cif").write_text(c.to_cif())
    (tmp_path / "bad.cif").write_text("garbage")
    folder = load_cif_folder(tmp_path)
    assert len(folder) == 3 and folder.skipped == 1


def test_split_is_reproducible_and_disjoint():
    a_train, a_val = split_indices(100, 0.1, seed=3)
    b_train, b_val = split_indices(100, 0.1, seed=3)
    assert a_val == b_val and len(a_val) == 10 and not set(a_train) & set(a_val)
    assert split_indices(100, 0.1, seed=4)[1] != a_val


def test_space_group_cells_are_parsed_or_unknown():
    from diffusion.data import _parse_space_group
    assert _parse_space_group("225") == 225 and _parse_space_group("136.0") == 136
    for bad in (None, "", "nan", "abc", "0", "231", "12.5", "-3"):
        assert _parse_space_group(bad) == 0


def test_gzip_csv_reads_like_the_plain_file_with_the_same_hash(perov_rows, tmp_path, monkeypatch):
    import gzip
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CACHE", str(tmp_path / "cache"))
    packed = tmp_path / "perov_small.csv.gz"
    packed.write_bytes(gzip.compress(perov_rows.read_bytes()))
    plain, compressed = load_csv(perov_rows, use_cache=False), load_csv(packed, use_cache=False)
    assert compressed.sha256 == plain.sha256, "a card's hash names the data, compressed or not"
    assert [c.material_id for c in compressed.crystals] == [c.material_id for c in plain.crystals]
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(packed.read_bytes()[:200])
    with pytest.raises(DatasetError, match="cannot be read"):
        load_csv(broken)


def test_shipped_data_match_the_hashes_the_cards_name():
    import json
    from pathlib import Path
    from diffusion.data import DATA_DIR, file_sha256, resolve_data_file
    cards = Path(__file__).resolve().parent.parent / "checkpoints"
    named = {(d["file"], d["sha256"]) for card in cards.glob("*.json") for d in json.loads(card.read_text())["data"]}
    assert named, "every shipped card names its training data"
    for file, sha in named:
        assert file.startswith("data/"), f"cards name repository-relative paths, not {file}"
        assert file_sha256(resolve_data_file(file)) == sha
    # a path written before the data moved into the repository still finds the file
    assert resolve_data_file("/elsewhere/shared/data/mp_20/val.csv") == DATA_DIR / "mp_20" / "val.csv.gz"
