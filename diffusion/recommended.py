"""A checkpoint's recommended composition-only setting, chosen from its own validation measurements.

Every ``evaluate --update-card`` run leaves a row in the card's ``metrics``. The composition-only rows (no
true space group given: ``--space-group none`` or ``predicted``; one sample per crystal; the whole
validation split; the current weights) are the candidates; the one with the highest match rate is the card's ``recommended``
setting, and the best of those that start from noise is its ``--start noise`` setting.
``benchmarks/recommended_setting.py`` writes both into the card with the table they were chosen from;
``sample``, ``evaluate`` and the app start from them (issue #17).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

Start = Literal["noise", "template"]
COMPOSITION_ONLY = ("none", "predicted")
DEFAULT_TEMPLATE_STEP = 300   # of T = 1000, for --start template without a measured t0


@dataclass(frozen=True)
class SamplingSetting:
    """How to sample from a composition alone, with the validation figure that recommends it.

    space_group: "none" or "predicted" (the training crystals' vote); template_step: None = from noise,
    else start from the retrieved template noised to this step; step_lr: the pc corrector's (None = the model's);
    symmetry: "wyckoff" keeps every frame in the group and Wyckoff positions of the template in that group
    (its sites only: the positions still come from noise unless template_step is set), "none" = free;
    group_choice: with space_group "predicted", who picks the group: "vote" (the nearest training crystals, by
    count) or "model" (the model, among the nearest crystals' groups: ``group_ranking.py``).
    """

    sampler: str = "ddpm"
    steps: int | None = None
    space_group: str = "none"
    guidance: float = 0.0
    template_step: int | None = None
    step_lr: float | None = None
    symmetry: str = "none"
    group_choice: str = "vote"
    match_rate: float | None = None
    n: int | None = None
    key: str = ""

    @property
    def start(self) -> Start:
        return "noise" if self.template_step is None else "template"

    def describe(self) -> str:
        """One sentence for people: what this setting does."""
        steps = f"{self.steps} steps" if self.steps else "every step"
        parts = [f"{ {'ddpm': 'DDPM', 'ddim': 'DDIM', 'pc': 'predictor-corrector'}.get(self.sampler, self.sampler)}, {steps}"]
        if self.space_group == "predicted":
            chooser = ("the model finds most plausible among those of the most similar training crystals"
                       if self.group_choice == "model" else "voted by the most similar training crystals")
            parts.append(f"in the space group {chooser}" + (f" (guidance w = {self.guidance:g})" if self.guidance else ""))
        if self.symmetry == "wyckoff":
            parts.append("keeping the Wyckoff sites of the nearest known crystal in that group at every step")
        if self.template_step is not None:
            parts.append(f"starting from the nearest known crystal noised to t0 = {self.template_step}")
        else:
            parts.append("starting from pure noise")
        figure = (f"; {self.match_rate:.1%} of the {self.n} validation crystals right" if self.match_rate is not None
                  and self.n else "")
        return ", ".join(parts) + figure

    @classmethod
    def from_dict(cls, values: dict) -> "SamplingSetting":
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in values.items() if k in fields})


def candidates(card: dict) -> list[SamplingSetting]:
    """Composition-only, k = 1, whole-validation-split rows of a card's metrics measured on its current
    weights, best first."""
    size = (card.get("split") or {}).get("validation")
    weights = card.get("steps")
    out = []
    for key, row in (card.get("metrics") or {}).items():
        if not isinstance(row, dict) or row.get("task", "csp") != "csp":
            continue
        rate = (row.get("metrics") or {}).get("match_rate")
        if (row.get("space_group") not in COMPOSITION_ONLY or row.get("k") != 1 or rate is None
                or row.get("split", "val") != "val" or (size and row.get("n") != size)
                or (weights is not None and row.get("checkpoint_steps") not in (None, weights))):
            continue
        out.append(SamplingSetting(sampler=row.get("sampler", "ddpm"), steps=row.get("steps"),
                                   space_group=row["space_group"], guidance=float(row.get("guidance") or 0.0),
                                   template_step=row.get("template_step"), step_lr=row.get("step_lr"),
                                   symmetry=row.get("symmetry") or "none", group_choice=row.get("group_choice") or "vote",
                                   match_rate=float(rate), n=row.get("n"), key=key))
    # best match rate first; on a tie the cheaper run (fewer steps)
    return sorted(out, key=lambda s: (-s.match_rate, s.steps or 10**9, s.key))


def choose(card: dict) -> dict | None:
    """The card's ``recommended`` entry: {"default": best, "noise": best from noise, "table": candidates}."""
    ranked = candidates(card)
    if not ranked:
        return None
    from_noise = next((s for s in ranked if s.template_step is None), None)
    return {"default": asdict(ranked[0]), "noise": asdict(from_noise) if from_noise else None,
            "table": [asdict(s) for s in ranked]}


def recommended(card: dict, start: Start | None = None) -> SamplingSetting | None:
    """The card's recommended setting (``start="noise"``: the best from noise; "template": the default
    setting started from a template); None when the card has none."""
    entry = card.get("recommended") if isinstance(card, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("default"), dict):
        return None
    default = SamplingSetting.from_dict(entry["default"])
    if start == "noise":
        noise = entry.get("noise")
        return SamplingSetting.from_dict(noise) if isinstance(noise, dict) else replace(default, template_step=None)
    if start == "template" and default.template_step is None:
        return replace(default, template_step=DEFAULT_TEMPLATE_STEP, match_rate=None, n=None)
    return default


def resolve_sampling_args(args, card: dict) -> SamplingSetting:
    """The setting a ``sample`` / ``evaluate`` command runs: each flag the user gave wins, every other one
    comes from the card's recommendation (``--start`` picks which), else the built-in defaults."""
    start = getattr(args, "start", None)
    base = recommended(card, start) or SamplingSetting(template_step=DEFAULT_TEMPLATE_STEP if start == "template"
                                                       else None)
    given = {name: getattr(args, name) for name in ("sampler", "steps", "guidance", "template_step", "step_lr",
                                                    "symmetry", "group_choice")
             if getattr(args, name, None) is not None}
    space_group = getattr(args, "space_group", None)
    if space_group is not None:
        given["space_group"] = space_group
    if "sampler" in given and given["sampler"] != base.sampler and "steps" not in given:
        given["steps"] = None   # another sampler than recommended runs its own default: every step
    if given.get("space_group") == "none" and not getattr(args, "prop", None):
        given.setdefault("guidance", 0.0)   # nothing to guide toward
    if given.get("space_group") == "none":
        given.setdefault("symmetry", "none")   # no group to keep
    if given.get("space_group") in ("none", "csv") or str(given.get("space_group", "")).isdigit():
        given.setdefault("group_choice", "vote")   # no group to choose
    if start == "noise":
        given["template_step"] = None
    changed = replace(base, **given)
    return changed if changed == base else replace(changed, match_rate=None, n=None, key="")


def write_recommendation(path: str | Path, entry: dict, command: str) -> None:
    """Store a ``choose`` result in a checkpoint's card (weights unchanged)."""
    from .checkpoints import load_card, model_from_dict, read_checkpoint, save_checkpoint

    path = Path(path)
    data = read_checkpoint(path)
    card = load_card(path) or data.get("card") or {}
    card["recommended"] = {**entry, "command": command}
    save_checkpoint(model_from_dict(data, path.name), path, card)
