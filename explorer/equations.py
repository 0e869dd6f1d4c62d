"""The course equations as LaTeX, with the numbers of a schedule at step t filled in.

No Streamlit here: every function returns strings (for ``st.latex`` / ``st.markdown``), so
the equations are unit-tested without an app. The math is the one the core runs:

* forward (``diffusion/corruption.py``): lattice latent x_t = sqrt(abar_t) x_0 +
  sqrt(1 - abar_t) eps (one step: sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps);
  coordinates F_t = (F_0 + sigma_t eps) mod 1.
* reverse (``diffusion/samplers/``): one update goes from t to the next step s of the
  sampler's grid (s = t - 1 when every step is run); on a strided grid abar_t / abar_s plays
  the role of alpha_t. The numbers filled in are the sampler's own coefficients: those a run
  recorded (``Trajectory.coefficients``, from each ``StepResult``) when the trajectory is given,
  else those the sampler computes for the schedule with the same code its ``step`` uses.

Schedules are ``diffusion.NoiseSchedule`` objects (T+1 values, index 0 = clean data).
The reverse-process noise scale, called sigma_t in the DDPM paper, is written sqrt(beta_t)
here, because sigma_t already names the coordinate noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from diffusion.api import (Coefficients, DDIMCoefficients, DDPMCoefficients, PCCoefficients, ProcessConfig,
                           ScheduleValues, make_sampler, step_grid)

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

def reverse_pair(num_steps: int, steps: int | None, t: int, start_step: int | None = None) -> tuple[int, int]:
    """(t, s): the update the sampler makes at step t, from t to the next step s of its grid.

    ``steps`` is the number of network evaluations (None = all T steps, so s = t - 1); start_step:
    the t0 of a run started from a noised structure. At t = 0 (the sample itself) it is the last
    update, the one that produced x_0.
    """
    grid = step_grid(int(num_steps), steps, start_step)
    pairs = dict(zip(grid, grid[1:] + [0]))
    if int(t) == 0:
        return grid[-1], 0
    if int(t) not in pairs:
        raise ValueError(f"step {t} is not on the sampler's grid ({grid[0]}, {grid[1] if len(grid) > 1 else 0}, ...)")
    return int(t), pairs[int(t)]


def recorded_update(trajectory, t: int) -> Coefficients:
    """The coefficients a run used in its update at step t (at t = 0: the last update)."""
    updates = trajectory.coefficients
    if not updates:
        raise ValueError("this trajectory was recorded without its sampler's coefficients")
    if int(t) == 0:
        return updates[-1]
    for c in updates:
        if c.t == int(t):
            return c
    raise ValueError(f"step {t} is not on the sampler's grid ({updates[0].t}, {updates[0].s}, ...)")


def update_coefficients(schedule, steps: int | None, t: int, sampler: str, step_lr: float = DEFAULT_STEP_LR,
                        start_step: int | None = None) -> Coefficients:
    """The coefficients of the update at slider step t, computed by the sampler itself for ``schedule``
    (a ``NoiseSchedule``; the model's float32 values, as in a run)."""
    t_from, s = reverse_pair(schedule.num_steps, steps, t, start_step)
    values = ScheduleValues.of(schedule)
    return make_sampler(sampler, values, step_lr=step_lr if sampler == "pc" else None).coefficients(t_from, s)


def _sampler_of(c: Coefficients) -> str:
    for kind, name in ((PCCoefficients, "pc"), (DDPMCoefficients, "ddpm"), (DDIMCoefficients, "ddim")):
        if isinstance(c, kind):
            return name
    raise ValueError(f"no equations for {type(c).__name__}")


def _symbols(t: int, s: int) -> dict[str, str]:
    """LaTeX names of the per-update constants: alpha_t, beta_t when s = t - 1, else alpha_{t|s}, beta_{t|s}."""
    if s == t - 1:
        return {"s": "t-1", "alpha": r"\alpha_t", "beta": r"\beta_t"}
    return {"s": "s", "alpha": r"\alpha_{t|s}", "beta": r"\beta_{t|s}"}


def reverse_lattice(c: Coefficients) -> str:
    """The lattice update of coefficients ``c`` (DDPM / pc or DDIM): the paper's form, its numbers, and the
    form the code computes with exactly the numbers it used."""
    t, s = c.t, c.s
    sym = _symbols(t, s)
    x0 = rf"\hat x_0 = \frac{{x_{{{t}}} - {number(c.eps_scale)}\,\hat\varepsilon}}{{{number(c.signal_scale)}}}"
    if isinstance(c, DDIMCoefficients):
        return (r"\begin{aligned}"
                + rf"x_{{{sym['s']}}} &= \sqrt{{\bar\alpha_{{{sym['s']}}}}}\,\hat x_0 + \sqrt{{1-\bar\alpha_{{{sym['s']}}}}}\,\hat\varepsilon,"
                + r"\qquad \hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}}\\"
                + rf"x_{{{s}}} &= {number(c.signal_scale_s)}\,\hat x_0 + {number(c.eps_scale_s)}\,\hat\varepsilon,"
                + rf"\qquad {x0}"
                + r"\end{aligned}")
    general = (rf"x_{{{sym['s']}}} &= \frac{{1}}{{\sqrt{{{sym['alpha']}}}}}\Big(x_t - "
               rf"\frac{{{sym['beta']}}}{{\sqrt{{1-\bar\alpha_t}}}}\,\hat\varepsilon\Big) + \sqrt{{{sym['beta']}}}\,z")
    if s != t - 1:
        general += (r",\qquad \alpha_{t|s} = \frac{\bar\alpha_t}{\bar\alpha_s},\ "
                    r"\beta_{t|s} = 1 - \alpha_{t|s}")
    noise = rf" + {number(c.lattice_noise)}\,z" if s > 0 else r"\quad(z = 0 \text{ on the last step})"
    alpha_name = rf"\alpha_{{{t}}}" if s == t - 1 else rf"\alpha_{{{t}|{s}}}"
    filled = (rf"x_{{{s}}} &= {number(1 / math.sqrt(c.alpha))}\,\big(x_{{{t}}} - {number(c.beta / c.eps_scale)}"
              rf"\,\hat\varepsilon\big){noise},\qquad {alpha_name} = {number(c.alpha)}")
    computed = (rf"&= {number(c.mean_x0)}\,\hat x_0 + {number(c.mean_xt)}\,x_{{{t}}}"
                + (rf" + {number(c.lattice_noise)}\,z" if s > 0 else "")
                + rf",\qquad {x0}\ \text{{(clipped)}}")
    return r"\begin{aligned}" + general + r"\\" + filled + r"\\" + computed + r"\end{aligned}"


def reverse_coords(c: Coefficients) -> tuple[str, ...]:
    """The coordinate update(s) of coefficients ``c`` (predictor-corrector: the corrector first), with numbers."""
    t, s = c.t, c.s
    sym = _symbols(t, s)["s"]
    sigmas = rf"&\sigma_{{{t}}} = {number(c.sigma_t)},\ \sigma_{{{s}}} = {number(c.sigma_s)}\end{{aligned}}"
    lines = []
    if isinstance(c, PCCoefficients):
        lines.append(r"\begin{aligned}F_t &\leftarrow (F_t + \gamma\,\hat s + \sqrt{2\gamma}\,z) \bmod 1,"
                     r"\qquad \gamma = \eta\,(\sigma_t/\sigma_1)^2\\"
                     + rf"F_{{{t}}} &\leftarrow (F_{{{t}}} + {number(c.gamma)}\,\hat s + {number(c.corrector_noise)}\,z)"
                     + rf" \bmod 1,\qquad \eta = {number(c.step_lr)}\end{{aligned}}")
    if isinstance(c, DDIMCoefficients):
        lines.append(rf"\begin{{aligned}}F_{{{sym}}} &= \big(F_t + \tfrac12(\sigma_t^2 - \sigma_{{{sym}}}^2)\,\hat s\big) \bmod 1\\"
                     + rf"F_{{{s}}} &= (F_{{{t}}} + {number(c.coord_drift)}\,\hat s) \bmod 1\\" + sigmas)
        return tuple(lines)
    noise_text = rf" + {number(c.coord_noise)}\,z" if s > 0 else ""
    lines.append(rf"\begin{{aligned}}F_{{{sym}}} &= \Big(F_t + (\sigma_t^2 - \sigma_{{{sym}}}^2)\,\hat s + "
                 rf"\sqrt{{\tfrac{{(\sigma_t^2 - \sigma_{{{sym}}}^2)\,\sigma_{{{sym}}}^2}}{{\sigma_t^2}}}}\,z\Big) \bmod 1\\"
                 + rf"F_{{{s}}} &= (F_{{{t}}} + {number(c.coord_drift)}\,\hat s{noise_text}) \bmod 1\\" + sigmas)
    return tuple(lines)


def guidance_line(w: float) -> str:
    """Classifier-free guidance mixing with weight w."""
    return (r"\hat\varepsilon = (1+w)\,\hat\varepsilon(x_t, t, c) - w\,\hat\varepsilon(x_t, t, \varnothing)"
            + rf" = {number(1 + w)}\,\hat\varepsilon(x_t, t, c) - {number(w)}\,\hat\varepsilon(x_t, t, \varnothing)")


COORD_NOTES = {
    "ddpm": "ŝ is the predicted score of the wrapped normal: it points from each atom toward where the model "
            "thinks it belongs. The step moves along it by σ_t² − σ_s² and adds a little noise back.",
    "pc": "First the corrector: a tiny Langevin step at the same noise level (η is the step size), then the "
          "same predictor as DDPM. The corrector lets the atoms settle before the noise drops.",
    "ddim": "The probability-flow ODE: half the DDPM move along the score and no noise, so the same start "
            "always gives the same crystal.",
}
LATTICE_TITLES = {"ddpm": "Lattice: DDPM update with the predicted noise ε̂",
                  "pc": "Lattice: DDPM update with the predicted noise ε̂",
                  "ddim": "Lattice: DDIM update (deterministic)"}
COORD_TITLES = {"ddpm": "Coordinates: reverse wrapped-normal step", "pc": "Coordinates: corrector, then predictor",
                "ddim": "Coordinates: probability-flow step"}


def reverse_panels(schedule, steps: int | None, t: int, sampler: str, task: str = "csp", guidance: float = 0.0,
                   step_lr: float = DEFAULT_STEP_LR, trajectory=None, start_step: int | None = None) -> list[Panel]:
    """The reverse-process equations of one sampler at slider step t of a trajectory.

    With ``trajectory`` (a ``Trajectory`` that kept its coefficients) the numbers are those the run
    used and its own sampler and grid are shown; otherwise the sampler computes them for
    ``schedule`` (the model's ``NoiseSchedule``), ``steps`` network evaluations (None = T) and
    ``start_step`` (a run from a noised structure). task: 'csp' or 'gen' (adds the type-reveal
    rule); guidance: w, 0 when not conditioned; step_lr: the pc corrector's step size.
    """
    if trajectory is not None and trajectory.coefficients:
        c = recorded_update(trajectory, t)
        updates = len(trajectory.coefficients)
    else:
        t = _check_step(schedule, t)
        c = update_coefficients(schedule, steps, t, sampler, step_lr, start_step)
        updates = len(step_grid(int(schedule.num_steps), steps, start_step))
    sampler = _sampler_of(c)
    t_from, s = c.t, c.s
    total = int(schedule.num_steps) if schedule is not None else trajectory.coefficients[0].t
    where = (f"This is the update the sampler made at t = {t_from}, going to s = {s}"
             + (" (the last one: it produced the crystal at t = 0)." if int(t) == 0 else ".")
             + ("" if s == t_from - 1 else f" It runs {updates} of the T = {total} steps, so ᾱ_t/ᾱ_s plays the "
                "role of α_t."))
    if isinstance(c, DDIMCoefficients):
        lattice_note = (f"{where} DDIM is deterministic: it estimates the clean lattice x̂₀ from the predicted noise "
                        "and re-noises it to the lower level s with the same ε̂, adding no fresh noise.")
    else:
        lattice_note = (f"{where} The update removes a slice ({c.beta / c.eps_scale:.3g}) of the predicted "
                        f"noise ε̂ and adds fresh noise √β z ({math.sqrt(c.beta):.3g} z)"
                        + (", none on the last step" if s == 0 else "") + "; both shrink as t goes to 0. "
                        "The code first clips the predicted x̂₀ to the data range, which only matters near t = T; "
                        "the last line is the form it computes, with the numbers it used.")
    panels = [Panel(LATTICE_TITLES[sampler], (reverse_lattice(c),), lattice_note),
              Panel(COORD_TITLES[sampler], reverse_coords(c), COORD_NOTES[sampler], "coords")]
    if task == "gen":
        panels.append(Panel("Atom types (absorbing diffusion)",
                            (rf"P(\text{{reveal a masked atom}}) = \frac{{t - s}}{{t}} = \frac{{{t_from - s}}}{{{t_from}}}"
                             rf" = {number(c.reveal)}",),
                            "Undecided atoms get their element at random moments, drawn from the model's p(type | x_t); "
                            "by t = 0 every atom is decided.", "types"))
    if guidance:
        panels.append(Panel("Classifier-free guidance", (guidance_line(guidance),),
                            "The same mix is applied to ŝ (and the type logits): w > 0 exaggerates what the "
                            "condition changes.", "guidance"))
    return panels


# ------------------------------------------------------------------------------ CDVAE (annealed Langevin)

def langevin_panels(step, score_rms: float | None = None) -> list[Panel]:
    """The Langevin update that produced a CDVAE frame (``diffusion.cdvae.LangevinStep``: level, sigma_l,
    gamma, eta, step within the level), with its numbers; the first frame (level 0) shows the start."""
    if step.level == 0:
        return [Panel("The start (before any Langevin step)",
                      (r"z \sim \mathcal{N}(0, I)\ \to\ N,\ L,\ \text{composition from the heads of } z",
                       r"F \sim \mathcal{U}[0, 1)^{N \times 3}"),
                      "The latent z decides the atom count, the cell and the elements; the positions start uniform "
                      "on the torus and the Langevin steps place them.", "coords")]
    l, n = step.level, step.steps_per_level
    score = "" if score_rms is None else rf",\qquad \mathrm{{rms}}\,\hat s_\theta/\sqrt{{E[s^2]}} = {number(score_rms)}"
    update = (r"\begin{aligned}F &\leftarrow \big(F + \gamma_l\,\hat s_\theta(F, A \mid z, \sigma_l) + \sqrt{2\gamma_l}\,\xi\big)"
              r" \bmod 1,\qquad \xi \sim \mathcal{N}(0, I)\\"
              + rf"F &\leftarrow (F + {number(step.gamma)}\,\hat s + {number(math.sqrt(2 * step.gamma))}\,\xi) \bmod 1"
              + r"\end{aligned}")
    size = (rf"\gamma_l = \eta\,\sigma_l^2 = {number(step.eta)} \times {number(step.sigma)}^2 = {number(step.gamma)},"
            rf"\qquad l = {l} \text{{ of }} {step.num_levels},\ \text{{step }} {step.step_in_level} \text{{ of }} {n}" + score)
    types = r"A \leftarrow \arg\max_{\text{assignment of the composition}} \textstyle\sum_i \log p_\theta(A_i \mid F, z, \sigma_l)"
    return [Panel("Annealed Langevin step (CDVAE)", (update, size),
                  "The score network moves every atom a step of size γ up the learned log-density at noise level "
                  "σ_l, plus fresh noise; the levels shrink from the widest to the narrowest, n steps each.",
                  "coords"),
            Panel("Which atom is which", (types,),
                  "The composition stays the one z predicted; the decoder's type probabilities decide which atom "
                  "gets which element after every step.", "types")]
