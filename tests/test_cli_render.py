"""``python -m diffusion render``: files written (real subprocesses) and one-line errors with exit 2."""
from __future__ import annotations

import pytest
from PIL import Image

from test_cli import assert_one_line_error, cli


def test_render_writes_a_gif_and_a_png_strip(checkpoint_dir, tmp_path):
    gif = tmp_path / "slides" / "srtio3.gif"
    r = cli("render", "--checkpoint", "tiny_csp", "--composition", "SrTiO3", "--sampler", "ddpm", "--steps", "6",
            "--frames", "4", "--size", "200", "--threads", "1", "--out", str(gif), env_dir=checkpoint_dir)
    assert r.returncode == 0, r.stderr
    assert "4 frames: t = 50" in r.stdout
    image = Image.open(gif)
    assert image.format == "GIF" and image.n_frames == 4 and image.size == (200, 200)
    png = tmp_path / "strip.png"
    r = cli("render", "--checkpoint", "tiny_gen", "--num-atoms", "4", "--steps", "5", "--frames", "3",
            "--size", "160", "--threads", "1", "--out", str(png), env_dir=checkpoint_dir)
    assert r.returncode == 0, r.stderr
    assert Image.open(png).size == (3 * 160, 160)


@pytest.mark.parametrize("args,fragment", [
    (("--composition", "SrTiO3", "--out", "x.jpg"), ".gif"),
    (("--composition", "SrTiO3", "--frames", "61", "--out", "x.gif"), "at most 60"),
    (("--composition", "SrTiO3", "--frames", "0", "--out", "x.gif"), ">= 1"),
    (("--composition", "SrTiO3", "--size", "5000", "--out", "x.png"), "size"),
    (("--composition", "SrTiO3", "--steps", "51", "--out", "x.gif"), "at most the model's T = 50"),
    (("--composition", "SrXx3", "--out", "x.gif"), "unknown element"),
    (("--out", "x.gif"), "--composition"),
    (("--composition", "SrTiO3", "--template-step", "0", "--out", "x.gif"), "at least 1"),
    (("--composition", "SrTiO2", "--template-step", "10", "--out", "x.gif"), "no template"),
])
def test_render_bad_input(checkpoint_dir, tmp_path, args, fragment):
    args = tuple(str(tmp_path / a) if a.startswith("x.") else a for a in args)
    r = cli("render", "--checkpoint", "tiny_csp", *args, env_dir=checkpoint_dir)
    assert_one_line_error(r, fragment)
    assert not list(tmp_path.iterdir()), "nothing written"


def test_render_gen_model_refuses_a_composition(checkpoint_dir, tmp_path):
    assert_one_line_error(cli("render", "--checkpoint", "tiny_gen", "--composition", "SrTiO3",
                              "--out", str(tmp_path / "x.gif"), env_dir=checkpoint_dir), "--num-atoms")


def test_render_from_a_template_starts_at_t0(checkpoint_dir, tmp_path):
    gif = tmp_path / "from_template.gif"
    r = cli("render", "--checkpoint", "tiny_csp", "--composition", "SrTiO3", "--template-step", "20", "--sampler", "ddim",
            "--steps", "10", "--frames", "3", "--size", "160", "--threads", "1", "--out", str(gif), env_dir=checkpoint_dir)
    assert r.returncode == 0, r.stderr
    assert "template:" in r.stderr and "3 frames: t = 20" in r.stdout
    assert Image.open(gif).n_frames == 3
