"""Save, load and list checkpoints. Only tensors and plain config are ever loaded.

A checkpoint is one ``torch.save`` file read back with ``weights_only=True`` (no code
is unpickled), holding::

    format          "crystal-diffusion/1"
    model_config    DenoiserConfig as a dict
    process         ProcessConfig as a dict
    normalization   Normalization as a dict
    state_dict      the (EMA) weights used for sampling
    card            the model card (also written as <name>.json beside the file)

Files are written atomically (temporary file + rename), so a crash never leaves a
half-written checkpoint behind.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .model import DenoiserConfig
from .crystal_diffusion import CrystalDiffusion, Normalization, ProcessConfig
from .sampling import check_step_lr

FORMAT = "crystal-diffusion/1"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
FOLDER_ENV = "CRYSTAL_DIFFUSION_CHECKPOINTS"
MAX_CHECKPOINT_BYTES = 512 * 1024 * 1024


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why."""


@dataclass(frozen=True)
class CheckpointInfo:
    name: str
    path: Path
    card: dict


def atomic_torch_save(obj, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_text(text: str, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def checkpoint_dict(model: CrystalDiffusion, state_dict: dict | None = None, card: dict | None = None) -> dict:
    return {
        "format": FORMAT,
        "family": getattr(model, "family", "diffusion"),
        "model_config": model.model_config.to_dict(),
        "process": model.process.to_dict(),
        "normalization": model.normalization.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in (state_dict or model.state_dict()).items()},
        "card": card or {},
    }


def save_checkpoint(model: CrystalDiffusion, path: str | Path, card: dict | None = None,
                    state_dict: dict | None = None) -> None:
    """Write weights + config (+ the card as JSON beside it)."""
    path = Path(path)
    atomic_torch_save(checkpoint_dict(model, state_dict, card), path)
    if card is not None:
        atomic_write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", path.with_suffix(".json"))
        atomic_write_text(card_markdown(card), path.with_suffix(".md"))


def hardware_summary(card: dict) -> str:
    """Where a model was trained: the one machine, or each segment's machine with its step range."""
    segments = card.get("segments") or []
    if len(segments) <= 1:
        return str(card.get("hardware", "?"))
    return "; then ".join(f"{seg.get('hardware')} (steps {seg.get('from_step')}-{seg.get('to_step')}, "
                          f"batch {seg.get('batch_size')}, lr {seg.get('lr')}, {seg.get('wall_seconds')} s)"
                          for seg in segments)


def _device_of(hardware: str) -> str:
    """'x86_64, 2 CPU cores, torch 2.13.0+cpu, 1 process(es)' -> '2 CPU cores';
    '..., torch 2.11.0+cu130, NVIDIA H100 80GB HBM3, 1 process(es)' -> 'NVIDIA H100 80GB HBM3'."""
    parts = [p.strip() for p in str(hardware).split(",")]
    gpus = [p for p in parts[1:] if not p.startswith("torch") and not p.endswith(("CPU cores", "process(es)"))]
    return ", ".join(gpus) if gpus else next((p for p in parts if p.endswith("CPU cores")), str(hardware))


def training_summary(card: dict) -> str:
    """One line for people, e.g. '29,640 optimizer steps (924.51 epochs), 7.1 h: 15,473 on 2 CPU cores,
    14,167 on NVIDIA H100 80GB HBM3'."""
    steps, wall = card.get("steps"), card.get("wall_seconds")
    steps_text = f"{steps:,}" if isinstance(steps, int) else "?"
    if not isinstance(wall, (int, float)) or not math.isfinite(wall):
        duration = "?"
    else:
        duration = f"{wall / 3600:.1f} h" if wall >= 3600 else f"{wall / 60:.0f} min"
    per_device: dict[str, int] = {}
    segments = card.get("segments")
    for seg in segments if isinstance(segments, list) else []:
        span = (seg.get("from_step"), seg.get("to_step")) if isinstance(seg, dict) else (None, None)
        if all(isinstance(v, int) for v in span):  # a hand-edited card may hold anything
            device = _device_of(seg.get("hardware", "?"))
            per_device[device] = per_device.get(device, 0) + span[1] - span[0]
    if len(per_device) > 1:
        where = ", ".join(f"{n:,} on {device}" for device, n in per_device.items())
    else:
        where = f"on {_device_of(card.get('hardware', '?'))}"
    return f"{steps_text} optimizer steps ({card.get('epochs', '?')} epochs), {duration}: {where}"


def _percent(value) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "–"


def _number(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"


def headline_metrics(card: dict) -> list[dict]:
    """The card's evaluation results as table rows for people: one row per run with its step, sample
    count and headline numbers (match rate / RMSE for structure prediction, validity / coverage for
    ab initio generation)."""
    rows = []
    metrics = card.get("metrics")
    for key, result in (metrics.items() if isinstance(metrics, dict) else ()):
        if isinstance(result, dict) and result.get("family") == "cdvae":
            rows += _cdvae_rows(result)
            continue
        if not isinstance(result, dict) or not isinstance(result.get("metrics"), dict):
            continue
        m = result["metrics"]
        sampler = f"{str(result.get('sampler', key)).upper()} {result.get('steps', '')}".strip()
        if result.get("step_lr") is not None:
            sampler += f" (corrector step {result['step_lr']:g})"
        if result.get("precision", "float32") != "float32":
            sampler += f" in {result['precision']}"
        if result.get("task", "csp") == "gen":
            row = {"run": sampler, "validity": _percent(m.get("validity")), "COV-R": _percent(m.get("cov_recall")),
                   "COV-P": _percent(m.get("cov_precision")), "density W": _number(m.get("density_wasserstein"))}
        else:
            given = {None: "composition", "none": "composition", "predicted": "+ predicted space group"}.get(
                result.get("space_group"), "+ true space group")
            if result.get("guidance"):
                given += f", w = {result['guidance']:g}"
            if isinstance(result.get("k"), int) and result["k"] > 1:
                given += f", best of {result['k']} samples"
            if result.get("template_step") == 0:
                sampler, given = "no sampling", "the template alone (nearest training crystal, substituted)"
            elif result.get("template_step") is not None:
                given += f", from the template noised to t0 = {result['template_step']}"
            if result.get("symmetry") == "wyckoff":
                given += ", Wyckoff sites kept"
            row = {"run": f"{sampler}, {given}", "match rate": _percent(m.get("match_rate")),
                   "RMSE": _number(m.get("rmse")), "validity": _percent(m.get("validity"))}
            if m.get("space_group_rate") is not None:
                row["in asked group"] = _percent(m.get("space_group_rate"))
            polymorphs = m.get("polymorphs") or {}
            if polymorphs.get("metre") is not None:
                row["METRe"] = _percent(polymorphs["metre"])
                row["cRMSE"] = _number(polymorphs.get("crmse"))
        rows.append({**row, "n": m.get("n"), "at step": result.get("checkpoint_steps")})
    return rows


def _langevin_text(result: dict) -> str:
    eta = result.get("step_lr")
    return (f"Langevin {result.get('levels')} levels x {result.get('steps_per_level')}"
            + (f" (step size {eta:g})" if isinstance(eta, (int, float)) else ""))


def _cdvae_rows(result: dict) -> list[dict]:
    """A CDVAE evaluation as headline rows: reconstruction (match rate, RMSE) and generation (validity, coverage)."""
    rows, sampler = [], _langevin_text(result)
    recon = result.get("reconstruction")
    if isinstance(recon, dict):
        rows.append({"run": f"{sampler}, reconstruction from the encoded latent", "match rate": _percent(recon.get("match_rate")),
                     "RMSE": _number(recon.get("rmse")), "validity": _percent(recon.get("structural_validity")),
                     "n": recon.get("n"), "at step": result.get("checkpoint_steps")})
    gen = result.get("generation")
    if isinstance(gen, dict):
        rows.append({"run": f"{sampler}, generation from the prior", "validity": _percent(gen.get("validity")),
                     "COV-R": _percent(gen.get("cov_recall")), "COV-P": _percent(gen.get("cov_precision")),
                     "density W": _number(gen.get("density_wasserstein")), "n": gen.get("n"),
                     "at step": result.get("checkpoint_steps")})
    return rows


def _cdvae_tables(metrics: dict) -> list[str]:
    """The model card's tables for CDVAE evaluations (reconstruction, then generation)."""
    runs = {k: r for k, r in metrics.items() if isinstance(r, dict) and r.get("family") == "cdvae"}
    if not runs:
        return []
    lines = ["| run | at step | n | reconstruction match | RMSE | struct. validity | atom count right | "
             "composition right | s per crystal |", "|---|---|---|---|---|---|---|---|---|"]
    for key, result in runs.items():
        r = result.get("reconstruction") or {}
        lines.append(f"| {key} | {result.get('checkpoint_steps')} | {r.get('n')} | {r.get('match_rate')} | {r.get('rmse')} | "
                     f"{r.get('structural_validity')} | {r.get('num_atoms_right')} | {r.get('composition_right')} | "
                     f"{r.get('seconds_per_structure')} |")
    generated = {k: r["generation"] for k, r in runs.items() if isinstance(r.get("generation"), dict)}
    if generated:
        lines += ["", "| run | generated | reference | struct. validity | comp. validity | COV-R | COV-P | density W | "
                      "#elements W | uniqueness | novelty | s per crystal |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for key, g in generated.items():
            lines.append(f"| {key} | {g.get('n')} | {g.get('n_reference')} | {g.get('structural_validity')} | "
                         f"{g.get('compositional_validity')} | {g.get('cov_recall')} | {g.get('cov_precision')} | "
                         f"{g.get('density_wasserstein')} | {g.get('num_elements_wasserstein')} | {g.get('uniqueness')} | "
                         f"{g.get('novelty')} | {g.get('seconds_per_structure')} |")
    return lines


def _langevin_lines(card: dict) -> list[str]:
    """A CDVAE's default Langevin sampler and, when a sweep chose it, how."""
    process = card.get("process") or {}
    if card.get("family") != "cdvae" or "langevin_step" not in process:
        return []
    line = (f"- Langevin sampler: {process.get('num_levels')} noise levels x {process.get('steps_per_level')} steps, "
            f"step size eta = {process.get('langevin_step'):g} (gamma = eta sigma^2)")
    choice = card.get("langevin_choice")
    if isinstance(choice, dict):
        rows = "; ".join(f"eta {r.get('step_lr'):g} x {r.get('steps_per_level')}: {_percent(r.get('match_rate'))}"
                         for r in choice.get("rows", []) if isinstance(r, dict))
        line += (f", chosen by reconstruction match rate on {choice.get('n')} validation crystals at step "
                 f"{choice.get('at_step')} by `{choice.get('command')}` ({rows})")
    return [line]


def _step_lr_lines(card: dict) -> list[str]:
    """The pc sampler's default step size and, when it was chosen by a sweep, how."""
    value = (card.get("process") or {}).get("corrector_step_lr")
    if value is None:
        return []
    choice = card.get("corrector_step_lr_choice")
    if not isinstance(choice, dict):
        return [f"- pc sampler corrector step size: {value:g}"]
    rows = "; ".join(f"{r.get('step_lr'):g}: {_percent(r.get('match_rate'))}" for r in choice.get("rows", [])
                     if isinstance(r, dict) and isinstance(r.get("step_lr"), (int, float)))
    return [f"- pc sampler corrector step size: {value:g}, chosen on the validation split at step "
            f"{choice.get('at_step')} by `{choice.get('command')}` (step size: match rate; {rows})"]


def _recommended_lines(card: dict) -> list[str]:
    """The recommended composition-only setting (and the best from noise), when a benchmark chose one."""
    from .recommended import recommended

    best, noise = recommended(card), recommended(card, "noise")
    if best is None:
        return []
    lines = [f"- recommended setting (what `sample`, `evaluate` and the app use by default): {best.describe()} "
             f"(`{best.key}`)"]
    if noise is not None and noise.key != best.key:
        lines.append(f"- with `--start noise`: {noise.describe()} (`{noise.key}`)")
    command = (card.get("recommended") or {}).get("command")
    return lines + ([f"- chosen by `{command}` from the validation rows below"] if command else [])


def card_markdown(card: dict) -> str:
    """The model card as Markdown for people (the JSON beside it is the machine-readable source)."""
    split = card.get("split", {})
    lines = [f"# {card.get('name', 'model')}", "", card.get("description", ""), "",
             *([card["about_data"], ""] if card.get("about_data") else []),
             f"- command: `{card.get('command', '')}`",
             *[f"- data: `{d.get('file')}` (sha256 `{d.get('sha256')}`)" for d in card.get("data", [])],
             f"- split: {split.get('train')} training / {split.get('validation')} validation crystals "
             f"(val_fraction {split.get('val_fraction')}, seed {split.get('seed')}, at most {split.get('max_atoms')} atoms)",
             f"- conditions: {card.get('conditions')}",
             f"- parameters: {card.get('parameters')}; architecture: {card.get('architecture')}",
             f"- training: {card.get('steps')} steps ({card.get('epochs')} epochs), "
             f"{card.get('wall_seconds')} s wall time on {hardware_summary(card)}",
             *[f"- steps {seg.get('from_step')}-{seg.get('to_step')}: `{seg.get('command')}`"
               for seg in card.get("segments") or [] if len(card.get("segments")) > 1],
             *_step_lr_lines(card), *_langevin_lines(card), *_recommended_lines(card), "",
             "## Validation metrics", ""]
    metrics = card.get("metrics") or {}
    if not metrics:
        lines.append("None measured yet (`python -m diffusion evaluate --checkpoint NAME --update-card`).")
    else:
        lines += _cdvae_tables(metrics)
        metrics = {k: r for k, r in metrics.items() if r.get("family") != "cdvae"}
        csp = {k: r for k, r in metrics.items() if r.get("task", "csp") == "csp"}
        gen = {k: r for k, r in metrics.items() if r.get("task") == "gen"}
        if csp:
            lines += ["| run | at step | n | match rate | RMSE | validity | volume error | in asked group | METRe | cRMSE |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for key, result in csp.items():
                m = result.get("metrics", {})
                polymorphs = m.get("polymorphs") or {}
                lines.append(f"| {key} | {result.get('checkpoint_steps')} | {m.get('n')} | {m.get('match_rate')} | "
                             f"{m.get('rmse')} | {m.get('validity')} | {m.get('volume_error')} | {m.get('space_group_rate')} | "
                             f"{polymorphs.get('metre', '-')} | {polymorphs.get('crmse', '-')} |")
        if gen:
            lines += ([""] if csp else []) + [
                      "| run | at step | generated | reference | struct. validity | comp. validity | COV-R | COV-P | "
                      "density W | #elements W | uniqueness | novelty |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for key, result in gen.items():
                m = result.get("metrics", {})
                lines.append(f"| {key} | {result.get('checkpoint_steps')} | {m.get('n')} | {m.get('n_reference')} | "
                             f"{m.get('structural_validity')} | {m.get('compositional_validity')} | {m.get('cov_recall')} | "
                             f"{m.get('cov_precision')} | {m.get('density_wasserstein')} | "
                             f"{m.get('num_elements_wasserstein')} | {m.get('uniqueness')} | {m.get('novelty')} |")
    return "\n".join(lines) + "\n"


def checkpoint_folder() -> Path:
    """The folder of offered checkpoints: $CRYSTAL_DIFFUSION_CHECKPOINTS, else the shipped ``checkpoints/``."""
    return Path(os.environ.get(FOLDER_ENV) or SHIPPED_DIR)


def resolve(name_or_path: str | Path, folder: Path | None = None) -> Path:
    """A checkpoint name ("perov_5", looked up in ``folder``) or a path to a .pt file."""
    folder = checkpoint_folder() if folder is None else Path(folder)
    text = str(name_or_path)
    candidate = folder / f"{text}.pt"
    if "/" not in text and "\\" not in text and candidate.is_file():
        return candidate
    path = Path(text)
    if path.is_file():
        return path
    available = ", ".join(c.name for c in list_checkpoints(folder)) or "none"
    raise CheckpointError(f"no checkpoint named '{text}' (shipped: {available})")


def read_checkpoint(path: str | Path) -> dict:
    """Load the raw dict safely; every failure becomes a ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path.name} is larger than {MAX_CHECKPOINT_BYTES >> 20} MB; refusing to load it")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()
        detail = next((line for line in reason if "Unsupported" in line or "GLOBAL" in line), reason[0] if reason else "")
        if "weights_only" in str(exc) or "GLOBAL" in str(exc) or "Unsupported" in str(exc):
            raise CheckpointError(f"{path.name} contains pickled code or objects, not just weights; refusing to load it ({detail[:160]})") from None
        raise CheckpointError(f"{path.name} is not a readable checkpoint (truncated or corrupt): {detail[:160]}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a crystal-diffusion checkpoint (format {FORMAT} expected)")
    return data


def model_from_dict(data: dict, name: str = "checkpoint"):
    """The model a checkpoint dict describes: a ``CrystalDiffusion``, or a ``CDVAE`` for family "cdvae"."""
    family = data.get("family", "diffusion")
    try:
        if family == "cdvae":
            from .cdvae import CDVAE, CDVAEConfig, CDVAEProcess

            model = CDVAE(CDVAEConfig.from_dict(data["model_config"]), CDVAEProcess.from_dict(data["process"]),
                          Normalization.from_dict(data["normalization"]))
        elif family == "diffusion":
            model = CrystalDiffusion(DenoiserConfig.from_dict(data["model_config"]),
                                     ProcessConfig.from_dict(data["process"]), Normalization.from_dict(data["normalization"]))
        else:
            raise ValueError(f"unknown model family '{family}'")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{name}: its config is incomplete or invalid ({exc})") from None
    state = data.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{name}: it has no weights")
    expected = model.state_dict()
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    wrong = [k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise CheckpointError(f"{name}: its weights do not match its config (missing {len(missing)}, "
                              f"unexpected {len(unexpected)}, wrong shape {len(wrong)})")
    if any(not torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise CheckpointError(f"{name}: its weights contain NaN or infinity")
    model.load_state_dict(state)
    return model.eval()


def load_model(name_or_path: str | Path, device: str | torch.device = "cpu", folder: Path | None = None) -> CrystalDiffusion:
    """Load a checkpoint for sampling: refuses pickles, truncation and config/weight mismatches."""
    path = resolve(name_or_path, folder)
    return model_from_dict(read_checkpoint(path), path.name).to(device)


def set_corrector_step_lr(path: str | Path, step_lr: float, evidence: dict) -> None:
    """Store a checkpoint's default pc corrector step size (weights unchanged), with the measurements
    that chose it in its card (``corrector_step_lr_choice``)."""
    step_lr = check_step_lr(step_lr)
    path = Path(path)
    data = read_checkpoint(path)
    data["process"] = {**data["process"], "corrector_step_lr": step_lr}
    card = data.get("card") or load_card(path)
    card["process"] = {**card.get("process", {}), "corrector_step_lr": step_lr}
    card["corrector_step_lr_choice"] = evidence
    model = model_from_dict(data, path.name)
    save_checkpoint(model, path, card)


def set_langevin_defaults(path: str | Path, step_size: float, steps_per_level: int, evidence: dict) -> None:
    """Store a CDVAE checkpoint's default Langevin step size eta and steps per level (weights unchanged), with
    the measurements that chose them in its card (``langevin_choice``)."""
    if not (0 < step_size <= 1) or steps_per_level < 1:
        raise ValueError(f"need 0 < step size <= 1 and steps per level >= 1, got {step_size}, {steps_per_level}")
    path = Path(path)
    data = read_checkpoint(path)
    if data.get("family") != "cdvae":
        raise CheckpointError(f"{path.name} is not a CDVAE checkpoint")
    update = {"langevin_step": float(step_size), "steps_per_level": int(steps_per_level)}
    data["process"] = {**data["process"], **update}
    card = data.get("card") or load_card(path)
    card["process"] = {**card.get("process", {}), **update}
    card["langevin_choice"] = evidence
    save_checkpoint(model_from_dict(data, path.name), path, card)


def load_card(path: Path) -> dict:
    card_path = Path(path).with_suffix(".json")
    if card_path.is_file():
        try:
            return json.loads(card_path.read_text())
        except json.JSONDecodeError:
            return {}
    return {}


def list_checkpoints(folder: Path | None = None) -> list[CheckpointInfo]:
    """The checkpoints of a folder (``checkpoint_folder()`` by default), with their cards."""
    folder = checkpoint_folder() if folder is None else Path(folder)
    if not folder.is_dir():
        return []
    return [CheckpointInfo(p.stem, p, load_card(p)) for p in sorted(folder.glob("*.pt"))]
