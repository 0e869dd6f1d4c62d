"""The Generate page's settings as a frozen dataclass, and their round trip through the URL.

No Streamlit here: ``GenerateSettings`` is plain data, hashed by ``st.cache_data`` to key
cached trajectories, and ``from_query`` / ``to_query`` turn it into the page's
shareable link (``?model=perov_5&formula=SrTiO3&sampler=ddim&steps=100&seed=0&t=0``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Mapping

from .numbers import parse_space_group

SAMPLER_LABELS = {
    "ddim": "DDIM (fast, deterministic)",
    "ddpm": "DDPM (ancestral, the course's algorithm)",
    "pc": "Predictor-corrector (DDPM + Langevin)",
}
SAMPLER_NAMES = {"ddim": "DDIM", "ddpm": "DDPM", "pc": "predictor-corrector",
                 "langevin": "annealed Langevin"}  # in running text
LANGEVIN = "langevin"    # the sampler of a CDVAE (its own family: diffusion.cdvae)
MAX_LANGEVIN_STEPS_PER_LEVEL = 100
PRECISION_LABELS = {
    "float32": "float32 (exact)",
    "bfloat16": "bfloat16 products (faster, large cells)",
}
DEFAULT_PRECISION = "float32"
DEFAULT_SAMPLER = "ddim"
DEFAULT_STEPS = {"ddim": 100, "ddpm": 1000, "pc": 1000}
DEFAULT_TEMPLATE_STEP = 300   # of T = 1000: keeps the template's structure type, visibly noised
MAX_SEED = 2**31 - 1
MAX_GUIDANCE = 20.0


@dataclass(frozen=True)
class GenerateSettings:
    """Everything that determines one sampling run (same settings + same model = same trajectory).

    composition is used by structure-prediction (csp) models, num_atoms by ab initio (gen)
    models; space_group (1..230) and prop (data units) are None when not conditioned.
    """

    model: str
    composition: str = "SrTiO3"
    num_atoms: int = 5
    space_group: int | None = None
    prop: float | None = None
    guidance: float = 0.0
    sampler: str = DEFAULT_SAMPLER
    steps: int = DEFAULT_STEPS[DEFAULT_SAMPLER]
    seed: int = 0
    template_step: int | None = None    # csp: start from the nearest training crystal noised to this step
    symmetry: bool = False              # csp with a space group: keep its Wyckoff orbits at every step
    precision: str = DEFAULT_PRECISION  # of the network's matrix products (diffusion.precision)
    step_size: float | None = None      # CDVAE: the Langevin step size eta (None = the model's); steps = per level
    given_composition: bool = False     # CDVAE: decode ``composition`` (types fixed) instead of z's own atoms

    def generate_kwargs(self, task: str) -> dict:
        """Keyword arguments for ``diffusion.generate`` (the task decides composition vs. atoms)."""
        kwargs = dict(sampler=self.sampler, steps=int(self.steps), seed=int(self.seed), space_group=self.space_group,
                      prop=self.prop, guidance=float(self.guidance) if self.conditioned else 0.0,
                      precision=self.precision)
        if task == "gen":
            kwargs["num_atoms"] = int(self.num_atoms) if self.num_atoms > 0 else None  # 0: drawn from the data
        else:
            kwargs["composition"] = self.composition
        return kwargs

    @property
    def conditioned(self) -> bool:
        return self.space_group is not None or self.prop is not None

    def summary(self, task: str) -> str:
        if task == "cdvae":
            atoms = f"{self.num_atoms} atoms" if self.num_atoms > 0 else "atom count from z"
            eta = f" · eta {self.step_size:g}" if self.step_size is not None else ""
            return f"{atoms} · {self.model} · Langevin {self.steps} per level{eta} · seed {self.seed}"
        atoms = f"{self.num_atoms} atoms" if self.num_atoms > 0 else "atom count from the data"
        what = atoms if task == "gen" else self.composition
        extra = []
        if self.space_group is not None:
            extra.append(f"SG {self.space_group}")
        if self.prop is not None:
            extra.append(f"prop {self.prop:g}")
        if self.conditioned and self.guidance:
            extra.append(f"w {self.guidance:g}")
        if self.template_step is not None and task == "csp":
            extra.append(f"template from t0 {self.template_step}")
        if self.symmetry and task == "csp":
            extra.append("Wyckoff-constrained")
        if self.precision != DEFAULT_PRECISION:
            extra.append(self.precision)
        tail = f" · {', '.join(extra)}" if extra else ""
        return f"{what} · {self.model} · {self.sampler} {self.steps} steps · seed {self.seed}{tail}"

    def to_query(self, task: str) -> dict[str, str]:
        """The URL query parameters that reproduce this run."""
        query = {"model": self.model}
        if task == "cdvae":
            query.update(atoms=str(int(self.num_atoms)), sampler=LANGEVIN, steps=str(int(self.steps)),
                         seed=str(int(self.seed)))
            if self.step_size is not None:
                query["eta"] = f"{self.step_size:g}"
            return query
        if task == "gen":
            query["atoms"] = str(int(self.num_atoms))
        else:
            query["formula"] = self.composition
        if self.space_group is not None:
            query["sg"] = str(int(self.space_group))
        if self.prop is not None:
            query["prop"] = f"{self.prop:g}"
        if self.conditioned and self.guidance:
            query["w"] = f"{self.guidance:g}"
        if self.template_step is not None and task == "csp":
            query["template"] = str(int(self.template_step))
        if self.symmetry and task == "csp":
            query["symmetry"] = "wyckoff"
        if self.precision != DEFAULT_PRECISION:
            query["precision"] = self.precision
        query.update(sampler=self.sampler, steps=str(int(self.steps)), seed=str(int(self.seed)))
        return query

    def as_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "GenerateSettings":
        return replace(self, **changes)


def _int(text: str, name: str, low: int, high: int, errors: list[str]) -> int | None:
    try:
        value = int(str(text).strip())
    except ValueError:
        errors.append(f"'{name}={text}' is not a whole number")
        return None
    if not low <= value <= high:
        errors.append(f"'{name}={text}' must be between {low} and {high}")
        return None
    return value


def _float(text: str, name: str, errors: list[str], low: float = -math.inf, high: float = math.inf) -> float | None:
    try:
        value = float(str(text).strip())
    except ValueError:
        errors.append(f"'{name}={text}' is not a number")
        return None
    if not math.isfinite(value) or not low <= value <= high:
        errors.append(f"'{name}={text}' must be a number between {low:g} and {high:g}")
        return None
    return value


def _choice(text: str, name: str, choices, errors: list[str]) -> str | None:
    """``text`` when it is one of ``choices``; else None and a message in ``errors``."""
    if text in choices:
        return text
    errors.append(f"unknown {name} '{text}' (choose {', '.join(choices)})")
    return None


def from_query(params: Mapping[str, str], models: Mapping[str, int], default: GenerateSettings
               ) -> tuple[GenerateSettings, int | None, list[str]]:
    """Settings from URL query parameters, falling back to ``default`` field by field.

    Args:
        params: the page's query parameters (string values).
        models: offered model names -> their T (number of diffusion steps).
        default: settings used for anything missing or invalid.
    Returns:
        (settings, step t or None, readable messages about parameters that were ignored).
    """
    errors: list[str] = []
    values = default.as_dict()
    model = params.get("model")
    if model is not None:
        if model in models:
            values["model"] = model
        else:
            errors.append(f"there is no model '{model}' here (available: {', '.join(models) or 'none'})")
    T = models.get(values["model"], 1000)
    if "formula" in params:
        text = str(params["formula"]).strip()
        if 0 < len(text) <= 200:
            values["composition"] = text  # checked against the model by the page, next to the input
        else:
            errors.append("'formula' must be 1 to 200 characters")
    if "atoms" in params and (n := _int(params["atoms"], "atoms", 0 if params.get("sampler") == LANGEVIN else 1, 100,
                                        errors)) is not None:
        values["num_atoms"] = n
    if "sg" in params:
        number, message = parse_space_group(params["sg"])
        if message:
            errors.append(f"'sg={params['sg']}': {message}")
        else:
            values["space_group"] = number
    if "prop" in params and (p := _float(params["prop"], "prop", errors, -1e6, 1e6)) is not None:
        values["prop"] = p
    if "w" in params and (w := _float(params["w"], "w", errors, 0.0, MAX_GUIDANCE)) is not None:
        values["guidance"] = w
    if "sampler" in params and (sampler := _choice(params["sampler"], "sampler", (*SAMPLER_LABELS, LANGEVIN), errors)):
        values["sampler"] = sampler
    if "steps" in params and (s := _int(params["steps"], "steps", 1, T, errors)) is not None:
        values["steps"] = s
    else:
        values["steps"] = min(int(values["steps"]), T)
    if "seed" in params and (seed := _int(params["seed"], "seed", 0, MAX_SEED, errors)) is not None:
        values["seed"] = seed
    if "template" in params and (t0 := _int(params["template"], "template", 1, T, errors)) is not None:
        values["template_step"] = t0
    if "symmetry" in params and _choice(params["symmetry"], "symmetry", ("wyckoff",), errors):
        values["symmetry"] = True
    if "eta" in params and (eta := _float(params["eta"], "eta", errors, 1e-6, 1.0)) is not None:
        values["step_size"] = eta
    if "precision" in params and (precision := _choice(params["precision"], "precision", PRECISION_LABELS, errors)):
        values["precision"] = precision
    step = None
    if "t" in params:
        step = _int(params["t"], "t", 0, T, errors)
    return GenerateSettings(**values), step, errors
