"""What the Latent space page computes, cached and shared by all sessions (no widgets here): a CDVAE model's
validation crystals encoded and mapped to 2D, a decoded walk between two of them, and a property path with
crystals decoded along it (the core is ``diffusion.cdvae``, reached through ``api.cdvae_latent``)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from diffusion.api import cdvae, cdvae_latent, match_rms, validation_crystals

from .models import ModelEntry, get_model

MAX_MAP = 400              # validation crystals on the map
DECODED_ALONG = 5          # crystals decoded along the property path


@dataclass(frozen=True)
class LatentMap:
    """The validation crystals of one model (at most ``MAX_MAP``), their latent means (M, D), the principal
    plane and their 2D points (M, 2)."""

    crystals: list
    latents: torch.Tensor
    projection: object
    points: np.ndarray
    formulas: list[str]
    ids: list[str]
    symbols: list[frozenset]

    @property
    def spread(self) -> float:
        """The median distance of the latents from their mean (how far "far" is in z)."""
        return float((self.latents - self.latents.mean(0)).norm(dim=1).median())

    def label(self, k: int) -> str:
        return f"{self.formulas[k]} ({self.ids[k] or f'#{k}'})"


@dataclass(frozen=True)
class Walk:
    """A decoded walk from A to B: n points on the map (n, 2), the decoded crystals, and per point whether it
    matches A and B."""

    key: tuple
    points: np.ndarray
    structures: list
    matches: list[str]
    seconds: float


@dataclass(frozen=True)
class Optimised:
    """A property path: its points on the map (S+1, 2), the prediction at each step (S+1,), the decoded steps."""

    key: tuple
    points: np.ndarray
    predicted: np.ndarray
    picks: list[int]
    structures: list
    higher: bool
    seconds: float
    distance: float          # |z_S - z_0|


@st.cache_resource(max_entries=4, show_spinner="Encoding the validation crystals...")
def latent_map(path: str, version: int, _entry: ModelEntry) -> LatentMap:
    crystals = list(validation_crystals(_entry.card))[:MAX_MAP]
    if len(crystals) < 2:
        raise ValueError(f"{len(crystals)} validation crystal(s): a map needs at least two")
    latents = cdvae_latent.encode_means(get_model(_entry), crystals)
    projection = cdvae_latent.principal_plane(latents)
    structures = [c.to_structure() for c in crystals]
    return LatentMap(crystals, latents, projection, projection.project(latents).numpy(),
                     [s.composition.reduced_formula for s in structures], [str(c.material_id) for c in crystals],
                     [frozenset(el.symbol for el in s.composition.elements) for s in structures])


def _decode(model, z: torch.Tensor, seed: int, langevin: int) -> list:
    """The crystals of latents z (B, D), in one annealed-Langevin batch (only the last frame is kept)."""
    config = cdvae.LangevinConfig(steps_per_level=langevin, seed=seed, record_every=langevin * model.num_levels)
    bar = st.progress(0.0, text=f"Decoding {z.shape[0]} latents by annealed Langevin dynamics...")

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 50) == 0:
            bar.progress(done / total, text=f"Decoding {z.shape[0]} latents: Langevin step {done} of {total}")

    try:
        trajectory = cdvae.langevin_decode(model, z, config, progress=progress).trajectory
    finally:
        bar.empty()
    last = trajectory.num_frames - 1
    return [trajectory.structure(frame=last, crystal=i) for i in range(z.shape[0])]


def _matches(structure, reference) -> bool:
    try:
        return match_rms(structure, reference) is not None
    except Exception:   # a degenerate decoded cell: no match, not an error
        return False


@st.cache_data(max_entries=16, show_spinner=False)
def walk(path: str, version: int, a: int, b: int, num: int, seed: int, langevin: int, _entry: ModelEntry) -> Walk:
    mapped = latent_map(path, version, _entry)
    z = cdvae_latent.interpolate(mapped.latents[a], mapped.latents[b], num)
    started = time.perf_counter()
    structures = _decode(get_model(_entry), z, seed, langevin)
    ends = mapped.crystals[a].to_structure(), mapped.crystals[b].to_structure()
    matches = [" and ".join(name for name, end in zip("AB", ends) if _matches(s, end)) for s in structures]
    return Walk((path, version, a, b, num, seed, langevin), mapped.projection.project(z).numpy(), structures,
                matches, time.perf_counter() - started)


@st.cache_data(max_entries=16, show_spinner=False)
def optimise(path: str, version: int, start: int, higher: bool, steps: int, lr: float, seed: int, langevin: int,
              _entry: ModelEntry) -> Optimised:
    mapped = latent_map(path, version, _entry)
    model = get_model(_entry)
    started = time.perf_counter()
    found = cdvae_latent.optimize_property(model, mapped.latents[start], steps=steps, lr=lr, maximize=higher)
    picks = sorted({int(k) for k in np.linspace(0, steps, DECODED_ALONG).round()})
    structures = _decode(model, found.latents[picks], seed, langevin)
    return Optimised((path, version, start, higher, steps, lr, seed, langevin),
                     mapped.projection.project(found.latents).numpy(), found.predicted.double().numpy(), picks,
                     structures, higher, time.perf_counter() - started,
                     float((found.latents[-1] - found.latents[0]).norm()))


def property_name(entry: ModelEntry, model) -> str | None:
    """The property the model's head predicts (None without a head)."""
    if getattr(model, "property_head", None) is None:
        return None
    return (entry.card.get("train_config") or {}).get("property_name") or model.process.property_name
