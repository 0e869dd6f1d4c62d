"""Trajectory pictures for slides (diffusion/render.py): GIF and PNG strip round trips, bounds, errors."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from diffusion import generate
from diffusion.render import (MAX_BYTES, MAX_FRAMES, MAX_SIZE, evenly_spaced_steps, render_gif, render_strip)


@pytest.fixture(scope="module")
def trajectory(tiny_csp):
    return generate(tiny_csp, composition="SrTiO3", sampler="ddim", steps=8, seed=0)


@pytest.fixture(scope="module")
def gen_trajectory(tiny_gen):
    return generate(tiny_gen, num_atoms=4, num_samples=2, sampler="ddpm", steps=6, seed=1)


def test_evenly_spaced_steps_run_from_T_to_0(trajectory):
    assert trajectory.num_frames == 9
    steps = evenly_spaced_steps(trajectory, 4)
    assert len(steps) == 4 and steps[0] == 50 and steps[-1] == 0 and steps == sorted(steps, reverse=True)
    assert evenly_spaced_steps(trajectory, 100) == trajectory.timesteps.tolist(), "capped at the recorded frames"
    with pytest.raises(ValueError):
        evenly_spaced_steps(trajectory, 0)


def test_gif_has_one_frame_per_step_and_is_bounded(trajectory):
    steps = evenly_spaced_steps(trajectory, 5)
    data = render_gif(trajectory, steps, size=240)
    assert 0 < len(data) <= MAX_BYTES
    image = Image.open(io.BytesIO(data))
    assert image.format == "GIF" and image.size == (240, 240)
    assert image.n_frames == len(steps) == 5
    assert image.info.get("loop") == 0, "loops forever"
    durations = []
    for k in range(image.n_frames):
        image.seek(k)
        durations.append(image.info["duration"])
    assert durations[-1] > durations[0], "the crystal is held at the end"


def test_gif_default_size_and_every_recorded_step(trajectory):
    steps = trajectory.timesteps.tolist()
    image = Image.open(io.BytesIO(render_gif(trajectory, steps)))
    assert image.size == (480, 480) and image.n_frames == len(steps)


def test_png_strip_opens_with_one_panel_per_step(trajectory):
    steps = evenly_spaced_steps(trajectory, 3)
    data = render_strip(trajectory, steps, size=200)
    assert len(data) <= MAX_BYTES
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (3 * 200, 200)
    two_rows = Image.open(io.BytesIO(render_strip(trajectory, evenly_spaced_steps(trajectory, 5), size=150, columns=3)))
    assert two_rows.size == (3 * 150, 2 * 150)


def test_ab_initio_trajectory_with_undecided_types(gen_trajectory):
    assert gen_trajectory.masked(0, 1).all(), "at t = T every type is undecided"
    steps = evenly_spaced_steps(gen_trajectory, 3)
    image = Image.open(io.BytesIO(render_gif(gen_trajectory, steps, crystal=1, size=200)))
    assert image.n_frames == 3
    image.seek(0)
    colours = {rgb for _, rgb in image.convert("RGB").getcolors(200 * 200)}
    assert (0x50, 0x50, 0x50) in colours, "undecided atoms are drawn dark grey"


@pytest.mark.parametrize("kwargs,message", [
    (dict(steps=[]), "at least one"),
    (dict(steps=list(range(MAX_FRAMES + 1))), f"at most {MAX_FRAMES}"),
    (dict(steps=[50, 50]), "only once"),
    (dict(steps=[33]), "not recorded"),
    (dict(steps=[50, 0], size=MAX_SIZE + 1), "size"),
    (dict(steps=[50, 0], crystal=1), "crystal"),
])
def test_bad_arguments_say_what_is_wrong(trajectory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_gif(trajectory, **kwargs)
