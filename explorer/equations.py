"""The course equations as LaTeX, with the numbers of a schedule at step t filled in.

No Streamlit here: every function returns strings (for ``st.latex`` / ``st.markdown``), so
the equations are unit-tested without an app. The math is the one the core runs:

* forward (``diffusion/corruption.py``): lattice latent x_t = sqrt(abar_t) x_0 +
  sqrt(1 - abar_t) eps (one step: sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps);
  coordinates F_t = (F_0 + sigma_t eps) mod 1.
* reverse (``diffusion/sampling.py``, whose docstring is the reference): one update goes
  from t to the next step s of the sampler's grid (s = t - 1 when every step is run).
  On a strided grid abar_t / abar_s plays the role of alpha_t.

Schedules are ``diffusion.NoiseSchedule`` objects (T+1 values, index 0 = clean data).
The reverse-process noise scale, called sigma_t in the DDPM paper, is written sqrt(beta_t)
here, because sigma_t already names the coordinate noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from diffusion.process import ProcessConfig
from diffusion.sampling import step_grid

DEFAULT_STEP_LR = ProcessConfig().corrector_step_lr  # a model's pc step size unless its checkpoint says otherwise


@dataclass(frozen=True)
class Panel:
    """One block of equations: a heading, LaTeX lines (one ``st.latex`` each), what to notice, and
    which part of the crystal it is about ('lattice', 'coords', 'types' or 'guidance')."""

    title: str
    latex: tuple[str, ...]
    note: str
    field: str = "lattice"


GLOSSARY: tuple[tuple[str, str], ...] = (
    ("Noise schedule", "The fixed list of noise levels, one per step t = 0..T: β_t (noise added at step t), "
     "α_t = 1 − β_t, ᾱ_t = α_1 α_2 ··· α_t (signal left from x₀) for the lattice, and σ_t for the coordinates. "
     "Linear, cosine, sigmoid and quadratic schedules spend the steps differently."),
    ("SNR", "Signal-to-noise ratio of x_t: ᾱ_t / (1 − ᾱ_t). Infinite at t = 0, close to 0 at t = T; "
     "log-SNR is the natural clock of a diffusion model."),
    ("Wrapped normal", "A Gaussian wrapped around the unit interval: add σ ε and take the result mod 1, so an atom "
     "that leaves the cell comes back on the other side. Its density is a sum over periodic images, "
     "Σ_k N(F_t − F₀ + k; 0, σ_t²). For σ_t around 0.5 it is almost flat: uniform on [0, 1)."),
    ("Score", "The gradient of the log density, ∇ log p(x_t): the direction in which noisy data becomes more "
     "likely. The network predicts it for the coordinates (ŝ); for the lattice it predicts the noise ε̂, "
     "which is the score times −√(1 − ᾱ_t)."),
    ("Guidance", "Classifier-free guidance: ε̂ = (1 + w) ε̂(x, t, condition) − w ε̂(x, t, none). The model was "
     "trained with the condition sometimes dropped, so it can predict both; w > 0 pushes samples harder "
     "toward the condition (a property value or a space group)."),
    ("Predictor-corrector", "Each reverse step (the predictor) is preceded by a Langevin step at the same noise "
     "level (the corrector), F ← F + γ ŝ + √(2γ) z, which nudges the coordinates toward likely positions "
     "before the noise level drops."),
)


# ------------------------------------------------------------------------------ numbers

def number(x: float, digits: int = 4) -> str:
    """A value for a LaTeX formula: ``digits`` significant digits, more when that would show 0 or 1 for a
    value that is neither; very small or large values as a times-ten power."""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else r"\infty" if x > 0 else r"-\infty"
    for p in range(digits, digits + 5):
        text = f"{x:.{p}g}"
        if float(text) not in (0.0, 1.0, -1.0):
            break
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa}\times 10^{{{int(exponent)}}}"
    return text


def _values(schedule, t: int) -> dict[str, float]:
    return {name: float(getattr(schedule, name)[t]) for name in ("alpha", "beta", "abar", "sigma")}


def _check_step(schedule, t: int) -> int:
    T = int(schedule.num_steps)
    if not 0 <= int(t) <= T:
        raise ValueError(f"t must be between 0 and T = {T}, got {t}")
    return int(t)


# ------------------------------------------------------------------------------ forward process

def forward_step(schedule, t: int) -> str:
    """One forward step x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps, with step t's numbers."""
    t = _check_step(schedule, t)
    general = r"x_t = \sqrt{\alpha_t}\,x_{t-1} + \sqrt{1-\alpha_t}\,\varepsilon"
    if t == 0:
        return general + r"\qquad\text{(at } t = 0 \text{ nothing is added: } x_0 \text{ is the crystal)}"
    v = _values(schedule, t)
    return (r"\begin{aligned}" + general.replace("=", "&=", 1) + r"\\"
            + rf"x_{{{t}}} &= \sqrt{{{number(v['alpha'])}}}\,x_{{{t - 1}}} + \sqrt{{{number(v['beta'])}}}\,\varepsilon"
            + rf" = {number(math.sqrt(v['alpha']))}\,x_{{{t - 1}}} + {number(math.sqrt(v['beta']))}\,\varepsilon"
            + r"\end{aligned}")


def forward_closed_form(schedule, t: int) -> str:
    """The closed form x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, with abar_t and the SNR at step t."""
    t = _check_step(schedule, t)
    v = _values(schedule, t)
    snr = r"\infty" if v["abar"] >= 1 else number(v["abar"] / (1 - v["abar"]))
    return (r"\begin{aligned}x_t &= \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,"
            r"\qquad \bar\alpha_t = \textstyle\prod_{s=1}^{t}\alpha_s\\"
            + rf"x_{{{t}}} &= {number(math.sqrt(v['abar']))}\,x_0 + {number(math.sqrt(max(0.0, 1 - v['abar'])))}\,\varepsilon,"
            + rf"\qquad \bar\alpha_{{{t}}} = {number(v['abar'])},\quad \mathrm{{SNR}} = "
            + rf"\frac{{\bar\alpha_t}}{{1-\bar\alpha_t}} = {snr}\end{{aligned}}")


def wrapped_normal(schedule, t: int) -> str:
    """F_t = (F_0 + sigma_t eps) mod 1 with sigma_t at step t."""
    t = _check_step(schedule, t)
    sigma = float(schedule.sigma[t])
    return (r"\begin{aligned}F_t &= (F_0 + \sigma_t\,\varepsilon) \bmod 1\\"
            + rf"F_{{{t}}} &= (F_0 + {number(sigma)}\,\varepsilon) \bmod 1,\qquad \sigma_{{{t}}} = {number(sigma)}"
            + r"\end{aligned}")


def forward_panels(schedule, t: int) -> list[Panel]:
    """The forward-process equations at step t: lattice step, lattice closed form, coordinates."""
    t = _check_step(schedule, t)
    T = int(schedule.num_steps)
    v = _values(schedule, t)
    keep, add = math.sqrt(v["abar"]), math.sqrt(max(0.0, 1 - v["abar"]))
    return [
        Panel("Lattice, one step", (forward_step(schedule, t),),
              "x is the cell's shape and size as 6 normalized numbers. Each step keeps almost all of x_{t−1} and "
              "adds a little fresh noise; the squared factors add up to 1, so the variance stays 1 while the "
              "crystal's signal fades."
              + ("" if t == 0 else f" Here β_t = 1 − α_t = {v['beta']:.3g}.")),
        Panel("Lattice, straight from x₀", (forward_closed_form(schedule, t),),
              f"Many small steps compose into one jump: at t = {t} of {T}, {100 * keep ** 2:.0f}% of the variance "
              f"is still the crystal ({keep:.3f} x₀) and {100 * add ** 2:.0f}% is noise. Training uses this form "
              "to noise a crystal to any t in one go."),
        Panel("Fractional coordinates (wrapped normal)", (wrapped_normal(schedule, t),),
              "The coordinates are not shrunk toward 0 (they live on a torus): they are shaken with width σ_t and "
              "wrapped back into the cell. σ_t grows geometrically; around 0.5 the atoms are spread uniformly "
              "over the cell, the pure noise the reverse process starts from.", "coords"),
    ]


# ------------------------------------------------------------------------------ reverse process

def reverse_pair(num_steps: int, steps: int | None, t: int) -> tuple[int, int]:
    """(t, s): the update the sampler makes at step t, from t to the next step s of its grid.

    ``steps`` is the number of network evaluations (None = all T steps, so s = t - 1). At
    t = 0 (the sample itself) it is the last update, the one that produced x_0.
    """
    grid = step_grid(int(num_steps), steps)
    pairs = dict(zip(grid, grid[1:] + [0]))
    if int(t) == 0:
        return grid[-1], 0
    if int(t) not in pairs:
        raise ValueError(f"step {t} is not on the sampler's grid ({grid[0]}, {grid[1] if len(grid) > 1 else 0}, ...)")
    return int(t), pairs[int(t)]


def _symbols(t: int, s: int) -> dict[str, str]:
    """LaTeX names of the per-update constants: alpha_t, beta_t when s = t - 1, else alpha_{t|s}, beta_{t|s}."""
    if s == t - 1:
        return {"s": "t-1", "alpha": r"\alpha_t", "beta": r"\beta_t"}
    return {"s": "s", "alpha": r"\alpha_{t|s}", "beta": r"\beta_{t|s}"}


def reverse_lattice(schedule, t: int, s: int, sampler: str) -> str:
    """The lattice update from t to s of a sampler ('ddpm', 'pc' or 'ddim'), with numbers."""
    abar_t, abar_s = float(schedule.abar[t]), float(schedule.abar[s])
    sym = _symbols(t, s)
    if sampler == "ddim":
        x0 = (rf"\hat x_0 = \frac{{x_{{{t}}} - {number(math.sqrt(1 - abar_t))}\,\hat\varepsilon}}"
              rf"{{{number(math.sqrt(abar_t))}}}")
        return (r"\begin{aligned}"
                + rf"x_{{{sym['s']}}} &= \sqrt{{\bar\alpha_{{{sym['s']}}}}}\,\hat x_0 + \sqrt{{1-\bar\alpha_{{{sym['s']}}}}}\,\hat\varepsilon,"
                + r"\qquad \hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}}\\"
                + rf"x_{{{s}}} &= {number(math.sqrt(abar_s))}\,\hat x_0 + {number(math.sqrt(max(0.0, 1 - abar_s)))}\,\hat\varepsilon,"
                + rf"\qquad {x0}"
                + r"\end{aligned}")
    if sampler not in ("ddpm", "pc"):
        raise ValueError(f"unknown sampler '{sampler}'; choose ddpm, pc or ddim")
    alpha = abar_t / abar_s
    beta = 1 - alpha
    general = (rf"x_{{{sym['s']}}} &= \frac{{1}}{{\sqrt{{{sym['alpha']}}}}}\Big(x_t - "
               rf"\frac{{{sym['beta']}}}{{\sqrt{{1-\bar\alpha_t}}}}\,\hat\varepsilon\Big) + \sqrt{{{sym['beta']}}}\,z")
    if s != t - 1:
        general += (rf",\qquad \alpha_{{t|s}} = \frac{{\bar\alpha_t}}{{\bar\alpha_s}},\ "
                    rf"\beta_{{t|s}} = 1 - \alpha_{{t|s}}")
    noise = rf" + {number(math.sqrt(beta))}\,z" if s > 0 else r"\quad(z = 0 \text{ on the last step})"
    alpha_name = rf"\alpha_{{{t}}}" if s == t - 1 else rf"\alpha_{{{t}|{s}}}"
    filled = (rf"x_{{{s}}} &= {number(1 / math.sqrt(alpha))}\,\big(x_{{{t}}} - {number(beta / math.sqrt(1 - abar_t))}"
              rf"\,\hat\varepsilon\big){noise},\qquad {alpha_name} = {number(alpha)}")
    return r"\begin{aligned}" + general + r"\\" + filled + r"\end{aligned}"


def reverse_coords(schedule, t: int, s: int, sampler: str, step_lr: float = DEFAULT_STEP_LR) -> tuple[str, ...]:
    """The coordinate update(s) from t to s (predictor-corrector: the corrector first), with numbers."""
    sigma_t, sigma_s = float(schedule.sigma[t]), float(schedule.sigma[s])
    d2 = sigma_t ** 2 - sigma_s ** 2
    sym = _symbols(t, s)["s"]
    lines = []
    if sampler == "pc":
        gamma = step_lr * (sigma_t / float(schedule.sigma[1])) ** 2
        lines.append(r"\begin{aligned}F_t &\leftarrow (F_t + \gamma\,\hat s + \sqrt{2\gamma}\,z) \bmod 1,"
                     r"\qquad \gamma = \eta\,(\sigma_t/\sigma_1)^2\\"
                     + rf"F_{{{t}}} &\leftarrow (F_{{{t}}} + {number(gamma)}\,\hat s + {number(math.sqrt(2 * gamma))}\,z)"
                     + rf" \bmod 1,\qquad \eta = {number(step_lr)}\end{{aligned}}")
    if sampler == "ddim":
        lines.append(rf"\begin{{aligned}}F_{{{sym}}} &= \big(F_t + \tfrac12(\sigma_t^2 - \sigma_{{{sym}}}^2)\,\hat s\big) \bmod 1\\"
                     + rf"F_{{{s}}} &= (F_{{{t}}} + {number(0.5 * d2)}\,\hat s) \bmod 1\\"
                     + rf"&\sigma_{{{t}}} = {number(sigma_t)},\ \sigma_{{{s}}} = {number(sigma_s)}\end{{aligned}}")
        return tuple(lines)
    if sampler not in ("ddpm", "pc"):
        raise ValueError(f"unknown sampler '{sampler}'; choose ddpm, pc or ddim")
    noise = math.sqrt(d2 * sigma_s ** 2 / sigma_t ** 2) if sigma_t > 0 else 0.0
    noise_text = rf" + {number(noise)}\,z" if s > 0 else ""
    lines.append(rf"\begin{{aligned}}F_{{{sym}}} &= \Big(F_t + (\sigma_t^2 - \sigma_{{{sym}}}^2)\,\hat s + "
                 rf"\sqrt{{\tfrac{{(\sigma_t^2 - \sigma_{{{sym}}}^2)\,\sigma_{{{sym}}}^2}}{{\sigma_t^2}}}}\,z\Big) \bmod 1\\"
                 + rf"F_{{{s}}} &= (F_{{{t}}} + {number(d2)}\,\hat s{noise_text}) \bmod 1\\"
                 + rf"&\sigma_{{{t}}} = {number(sigma_t)},\ \sigma_{{{s}}} = {number(sigma_s)}\end{{aligned}}")
    return tuple(lines)


def guidance_line(w: float) -> str:
    """Classifier-free guidance mixing with weight w."""
    return (r"\hat\varepsilon = (1+w)\,\hat\varepsilon(x_t, t, c) - w\,\hat\varepsilon(x_t, t, \varnothing)"
            + rf" = {number(1 + w)}\,\hat\varepsilon(x_t, t, c) - {number(w)}\,\hat\varepsilon(x_t, t, \varnothing)")


def reverse_panels(schedule, steps: int | None, t: int, sampler: str, task: str = "csp", guidance: float = 0.0,
                   step_lr: float = DEFAULT_STEP_LR) -> list[Panel]:
    """The reverse-process equations of one sampler at slider step t of a trajectory.

    schedule: the model's ``NoiseSchedule``; steps: the run's network evaluations (None = T);
    task: 'csp' or 'gen' (adds the type-reveal rule); guidance: w, 0 when not conditioned.
    """
    t = _check_step(schedule, t)
    t_from, s = reverse_pair(schedule.num_steps, steps, t)
    where = (f"This is the update the sampler made at t = {t_from}, going to s = {s}"
             + (" (the last one: it produced the crystal at t = 0)." if t == 0 else ".")
             + ("" if s == t_from - 1 else f" It runs {len(step_grid(int(schedule.num_steps), steps))} of the "
                f"T = {schedule.num_steps} steps, so ᾱ_t/ᾱ_s plays the role of α_t."))
    abar_t, abar_s = float(schedule.abar[t_from]), float(schedule.abar[s])
    if sampler == "ddim":
        lattice_note = (f"{where} DDIM is deterministic: it estimates the clean lattice x̂₀ from the predicted noise "
                        "and re-noises it to the lower level s with the same ε̂, adding no fresh noise.")
    else:
        beta = 1 - abar_t / abar_s
        lattice_note = (f"{where} The update removes a slice ({beta / math.sqrt(1 - abar_t):.3g}) of the predicted "
                        f"noise ε̂ and adds fresh noise √β z ({math.sqrt(beta):.3g} z)"
                        + (", none on the last step" if s == 0 else "") + "; both shrink as t goes to 0. "
                        "The code first clips the predicted x̂₀ to the data range, which only matters near t = T.")
    coord_notes = {
        "ddpm": "ŝ is the predicted score of the wrapped normal: it points from each atom toward where the model "
                "thinks it belongs. The step moves along it by σ_t² − σ_s² and adds a little noise back.",
        "pc": "First the corrector: a tiny Langevin step at the same noise level (η is the step size), then the "
              "same predictor as DDPM. The corrector lets the atoms settle before the noise drops.",
        "ddim": "The probability-flow ODE: half the DDPM move along the score and no noise, so the same start "
                "always gives the same crystal.",
    }
    if sampler not in coord_notes:
        raise ValueError(f"unknown sampler '{sampler}'; choose ddpm, pc or ddim")
    lattice_title = {"ddpm": "Lattice: DDPM update with the predicted noise ε̂", "pc": "Lattice: DDPM update "
                     "with the predicted noise ε̂", "ddim": "Lattice: DDIM update (deterministic)"}[sampler]
    coords_title = {"ddpm": "Coordinates: reverse wrapped-normal step", "pc": "Coordinates: corrector, then predictor",
                    "ddim": "Coordinates: probability-flow step"}[sampler]
    panels = [Panel(lattice_title, (reverse_lattice(schedule, t_from, s, sampler),), lattice_note),
              Panel(coords_title, reverse_coords(schedule, t_from, s, sampler, step_lr), coord_notes[sampler], "coords")]
    if task == "gen":
        reveal = (t_from - s) / t_from
        panels.append(Panel("Atom types (absorbing diffusion)",
                            (rf"P(\text{{reveal a masked atom}}) = \frac{{t - s}}{{t}} = \frac{{{t_from - s}}}{{{t_from}}}"
                             rf" = {number(reveal)}",),
                            "Undecided atoms get their element at random moments, drawn from the model's p(type | x_t); "
                            "by t = 0 every atom is decided.", "types"))
    if guidance:
        panels.append(Panel("Classifier-free guidance", (guidance_line(guidance),),
                            "The same mix is applied to ŝ (and the type logits): w > 0 exaggerates what the "
                            "condition changes.", "guidance"))
    return panels
