"""The space group chosen by the model among its nearest known crystals' groups (``--group-choice model``).

The vote (``space_group_prediction.py``) lets the chemically nearest training crystals of a composition's prototype
decide by counting: SrTiO3's nearest cousin is BaTiO3's orthorhombic cell, so SrTiO3 gets Amm2. Here the
diffusion model decides instead. Each group among the nearest crystals is represented by its nearest crystal,
with the query's elements substituted (``templates.substitute_elements``: the template the sampler would start
from); the model scores each one by how well it denoises it, without any condition, at the low noise levels
where the atoms' arrangement is what is being denoised. A composition's real structure type is one the model
has seen in many chemical cousins, and it denoises it better than a stranger's (the idea of reading a diffusion
model's denoising error as a likelihood: Li et al., "Your Diffusion Model is Secretly a Zero-Shot Classifier",
ICCV 2023). The score of a candidate is

    log(mean denoising loss) + distance_weight * element distance to the query + vote_bonus * [not the vote's group]

and the lowest wins: the loss decides between close cousins, the distance keeps far ones out, and the vote keeps
its group on a near tie. The weights were chosen on mp_20's validation split and the whole split measured with
them (docs/experiments.md#the-model-chooses-the-group). Noise is drawn from a fixed seed, the same draws for every
candidate (common random numbers), so the choice is deterministic and compares like with like.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import torch

from .crystal import Crystal, CrystalBatch, CrystalGraph
from .crystal_diffusion import CrystalDiffusion
from .space_group_prediction import SpaceGroupGuess, SpaceGroupPredictor
from .templates import TemplateLibrary, substitute_elements

GROUP_CHOICES = ("vote", "model")


@dataclass(frozen=True)
class RankingConfig:
    """neighbours: nearest known crystals (of the prototype) whose groups compete; levels: the steps t the loss is
    measured at (low noise: the arrangement, not the cell, is at stake); draws: noise draws per level;
    distance_weight, vote_bonus: the score's other two terms (module docstring); seed: of the fixed draws."""

    neighbours: int = 6
    levels: tuple[int, ...] = (3, 8, 15, 30, 60)
    draws: int = 8
    distance_weight: float = 0.1
    vote_bonus: float = 0.1
    seed: int = 0


@torch.no_grad()
def denoising_loss(model: CrystalDiffusion, crystals: Sequence[Crystal], levels: Sequence[int], draws: int,
                   seed: int = 0) -> torch.Tensor:
    """(C,) each crystal's unconditional denoising loss (lattice eps MSE + normalized coordinate-score MSE, the
    training loss), averaged over ``draws`` noise draws at each step t in ``levels``.

    Crystals of one size get the same noise (one generator, drawn in batch order, all crystals of a call together),
    so the comparison between candidates of one composition is not blurred by different draws.
    """
    device = model.device
    batch = CrystalBatch.from_crystals(list(crystals)).to(device)
    B = batch.num_crystals
    graph = CrystalGraph.build(batch.num_atoms, batch.batch)
    prop = torch.full((B,), math.nan, device=device) if model.model_config.use_property else None
    group = torch.zeros(B, dtype=torch.long, device=device) if model.model_config.use_space_group else None
    generator = torch.Generator().manual_seed(int(seed))
    total = torch.zeros(B, device=device)
    for level in levels:
        t = torch.full((B,), int(level), device=device)
        for _ in range(draws):
            # one draw shared by all candidates (atom i of every crystal gets the same noise)
            eps = torch.randn(6, generator=generator).to(device).expand(B, 6)
            per_atom = torch.randn((int(batch.num_atoms.max()), 3), generator=generator).to(device)
            noise = torch.cat([per_atom[:n] for n in batch.num_atoms.tolist()])
            noised = model.corrupt(batch, t, graph=graph, eps=eps, noise=noise)
            eps_hat, score_hat, _ = model._network(batch.atomic_numbers, noised.frac_t, noised.x_t, batch.num_atoms,
                                                   batch.batch, t, prop, group, graph=graph)
            coords = torch.zeros(B, device=device).index_add_(0, batch.batch,
                                                              ((score_hat - noised.target_score) ** 2).mean(-1))
            total += ((eps_hat - noised.eps) ** 2).mean(-1) + coords / batch.num_atoms
    return (total / (len(levels) * draws)).cpu()


class ModelGroupPredictor:
    """``predict(atomic_numbers) -> SpaceGroupGuess | None`` like ``SpaceGroupPredictor``, with the group chosen by
    the model among the groups of the nearest training crystals (module docstring).

    ``votes`` of the guess hold each candidate group's share of exp(-score) (the winner's is its ``confidence``);
    ``neighbours`` the candidate crystals, nearest first. Answers are cached per composition.
    """

    def __init__(self, model: CrystalDiffusion, vote: SpaceGroupPredictor, library: TemplateLibrary,
                 config: RankingConfig = RankingConfig()):
        self.model, self.vote, self.library, self.config = model, vote, library, config
        self._cached = lru_cache(maxsize=256)(self._predict)

    def predict(self, atomic_numbers: Iterable[int]) -> SpaceGroupGuess | None:
        return self._cached(tuple(int(z) for z in atomic_numbers))

    def _predict(self, numbers: tuple[int, ...]) -> SpaceGroupGuess | None:
        voted = self.vote.predict(numbers)
        if voted is None:
            return None
        # one candidate per group: the nearest crystal of that group (what ``TemplateLibrary.template`` would pick)
        candidates = {}
        for neighbour in self.library.nearest(numbers, self.config.neighbours):
            if 1 <= neighbour.space_group <= 230:   # a reference without a known group cannot be asked for
                candidates.setdefault(neighbour.space_group, neighbour)
        if len(candidates) < 2:
            return voted
        neighbours = list(candidates.values())
        crystals = [substitute_elements(self.library.crystal(n.material_id), numbers, self.library.atomic_volumes)[0]
                    for n in neighbours]
        losses = denoising_loss(self.model, crystals, self.config.levels, self.config.draws, self.config.seed)
        scores = [math.log(max(float(loss), 1e-12)) + self.config.distance_weight * n.distance
                  + (0.0 if n.space_group == voted.space_group else self.config.vote_bonus)
                  for n, loss in zip(neighbours, losses)]
        weights = [math.exp(min(scores) - s) for s in scores]
        total = sum(weights)
        ranked = sorted(zip(neighbours, weights), key=lambda item: -item[1])
        return SpaceGroupGuess(ranked[0][0].space_group, tuple((n.space_group, w / total) for n, w in ranked),
                               tuple(neighbours))


def group_predictor(choice: str, vote: SpaceGroupPredictor, model: CrystalDiffusion | None = None,
                    library: TemplateLibrary | None = None):
    """The predictor behind ``--space-group predicted``: the vote, or (``choice="model"``) the model's choice."""
    if choice not in GROUP_CHOICES:
        raise ValueError(f"the group choice must be one of {', '.join(GROUP_CHOICES)}, got '{choice}'")
    if choice == "vote":
        return vote
    if model is None or library is None:
        raise ValueError("the model's choice of group needs the model and its training crystals")
    return ModelGroupPredictor(model, vote, library)
