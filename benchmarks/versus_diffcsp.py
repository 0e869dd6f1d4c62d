"""DiffCSP's own sampler against ours, same run, same CPU cores (issue 23). Prints a Markdown table.

Run:  .venv/bin/python benchmarks/versus_diffcsp.py --diffcsp /path/to/DiffCSP [--python /path/to/its/python]
          [--runs 3] [--threads 2]

The work: one 1000-step predictor-corrector trajectory of SrTiO3 (5 atoms) with every step recorded,
from noise, one crystal. Each side runs N times in fresh subprocesses, the sides alternating
(which one goes first swaps every round), so a drift of the shared machine's speed hits both alike.

- ours:    ``python -m diffusion sample --checkpoint perov_5 --composition SrTiO3 --sampler pc --steps 1000
           --start noise --trajectory --out TMP --threads N`` (the shipped perov_5 model);
           sampling loop alone: ``diffusion.api.generate(model, composition="SrTiO3", sampler="pc", steps=1000,
           seed=0, record="all")`` timed in a second fresh process, the model load excluded.
- DiffCSP: a driver written by this script to a temp dir. It composes DiffCSP's own hydra config from the
           checkout (``conf/default.yaml`` with ``data=perov_5``: ``conf/model/diffusion.yaml``,
           ``conf/model/decoder/cspnet.yaml``, ``conf/model/beta_scheduler/cosine.yaml``,
           ``conf/model/sigma_scheduler/wrapped.yaml``), instantiates the model exactly as ``diffcsp/run.py``
           does (random weights: speed does not depend on them), builds a one-crystal batch of SrTiO3 the way
           ``scripts/sample.py`` does (``torch_geometric`` ``Data(atom_types, num_atoms, num_nodes)`` collated
           into a ``Batch``), times ``model.sample(batch, step_lr=...)`` (their PC loop, which records every
           step) and ``torch.save``s the final crystal and the stacked trajectory. step_lr is the Perov-5 CSP
           value of ``recommand_step_lr`` in the checkout's ``scripts/eval_utils.py`` (read from that file).
           The DiffCSP code is used unmodified, imported from the checkout through sys.path.

Columns: (a) whole command: wall time of the subprocess minus the same interpreter's bare start-up
(``python -c pass``, timed the same way in every round; the median is subtracted); it includes imports,
model construction or load, sampling and writing the result. (b) sampling loop: the sample call alone,
timed inside the process with time.perf_counter (first call in a fresh process, as a user gets it).
Best and median over the runs; ratio = DiffCSP / ours.

Before the timed runs each side runs once untimed with a counter on its network (DiffCSP: a forward hook on
``model.decoder``; ours: a wrapper around ``SamplingNetwork.__call__``, one call = one network evaluation of
the batch), so the table can say how many network evaluations each side makes.

Dependencies of the DiffCSP side (never install them into this project's .venv):
- torch_scatter does not build here: the script writes a small stand-in package ``torch_scatter`` (``scatter``
  with sum/add/mean/mul/min/max via ``Tensor.scatter_reduce_``, ``composite.scatter_softmax``; ``segment_coo`` and
  ``segment_csr`` raise, they are only used by DiffCSP's k-NN graph and data code, not by the Perov-5 decoder,
  whose graph is fully connected). It is appended to the END of the driver's sys.path, so a real torch_scatter
  installed in that interpreter wins; the report says which one was used.
- everything else is real and pip-installed into a separate venv (see RECIPE): torch==2.13.0, torch_geometric,
  pytorch_lightning, hydra-core, omegaconf, python-dotenv, einops, tqdm, and the data-side packages that
  ``diffcsp/common/data_utils.py`` imports at module level (numpy, pandas, networkx, scikit-learn, p_tqdm,
  pathos, pymatgen, pyxtal). Nothing is stubbed.
"""
from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "versus_diffcsp.md"
COMPOSITION, STEPS = "SrTiO3", 1000
SRTIO3_NUMBERS = [38, 22, 8, 8, 8]   # DiffCSP's scripts/sample.py order: element by element as in the formula

RECIPE = """\
How to set up DiffCSP for this comparison (nothing goes into this project's .venv or repository):

  1. Get the code (any checkout of github.com/jiaor17/DiffCSP; the data/ folder and checkpoints are not needed):
       git clone https://github.com/jiaor17/DiffCSP /tmp/DiffCSP
     (in a session with the search tool: fetch github:jiaor17/DiffCSP, then
       git --git-dir=<mirror> archive HEAD -- README.md LICENSE .env.template conf scripts diffcsp/__init__.py \\
           diffcsp/common diffcsp/pl_data diffcsp/pl_modules diffcsp/run.py | tar -x -C /tmp/DiffCSP)
  2. A separate venv with its dependencies (torch_scatter is NOT needed: the benchmark brings a stand-in):
       python3.11 -m venv /tmp/diffcsp-venv
       /tmp/diffcsp-venv/bin/pip install torch==2.13.0 torch_geometric pytorch_lightning hydra-core omegaconf \\
           python-dotenv einops tqdm numpy pandas networkx scikit-learn p_tqdm pathos pymatgen pyxtal
  3. Run:
       .venv/bin/python benchmarks/versus_diffcsp.py --diffcsp /tmp/DiffCSP --python /tmp/diffcsp-venv/bin/python \\
           --runs 3 --threads 2
"""

# --------------------------------------------------------------------------------------------------------------
# The torch_scatter stand-in (our own code, a few lines over torch's scatter_reduce_).
SHIM_INIT = '''\
"""Stand-in for torch_scatter written by benchmarks/versus_diffcsp.py (the real one does not build here)."""
import torch

_REDUCE = {"sum": "sum", "add": "sum", "mean": "mean", "mul": "prod", "min": "amin", "max": "amax"}


def _broadcast(index, src, dim):
    if index.dim() == 1 and src.dim() > 1:
        shape = [1] * src.dim()
        shape[dim] = -1
        index = index.view(shape)
    return index.expand_as(src)


def scatter(src, index, dim=0, out=None, dim_size=None, reduce="sum"):
    """torch_scatter.scatter: reduce src's slices along dim into the rows given by index."""
    dim = dim % src.dim()
    index = _broadcast(index, src, dim)
    if out is None:
        size = list(src.shape)
        size[dim] = dim_size if dim_size is not None else (int(index.max()) + 1 if index.numel() else 0)
        out = src.new_ones(size) if reduce == "mul" else src.new_zeros(size)   # empty rows: 1 for mul, else 0
    return out.scatter_reduce_(dim, index, src, reduce=_REDUCE[reduce], include_self=False)


def scatter_sum(src, index, dim=-1, out=None, dim_size=None):
    return scatter(src, index, dim, out, dim_size, "sum")


def scatter_mean(src, index, dim=-1, out=None, dim_size=None):
    return scatter(src, index, dim, out, dim_size, "mean")


def segment_coo(*args, **kwargs):
    raise NotImplementedError("segment_coo is not in the benchmark's torch_scatter stand-in")


def segment_csr(*args, **kwargs):
    raise NotImplementedError("segment_csr is not in the benchmark's torch_scatter stand-in")
'''

SHIM_COMPOSITE = '''\
import torch

from . import scatter


def scatter_softmax(src, index, dim=-1, dim_size=None):
    """Softmax of src within each group of index along dim."""
    dim = dim % src.dim()
    maxes = scatter(src, index, dim, dim_size=dim_size, reduce="max")
    idx = index
    if idx.dim() == 1 and src.dim() > 1:
        shape = [1] * src.dim()
        shape[dim] = -1
        idx = idx.view(shape).expand_as(src)
    exp = (src - maxes.gather(dim, idx)).exp()
    sums = scatter(exp, index, dim, dim_size=dim_size, reduce="sum")
    return exp / sums.gather(dim, idx)
'''

# --------------------------------------------------------------------------------------------------------------
# DiffCSP's side: argv = checkout, shim dir, output file, threads, step_lr, "count" | "time"
DIFFCSP_DRIVER = r'''
import json, os, sys, time
t_begin = time.perf_counter()
checkout, shim, out_file, threads, step_lr, mode = sys.argv[1:7]
overrides = sys.argv[7:]      # extra hydra overrides (--diffcsp-override), none by default
threads, step_lr = int(threads), float(step_lr)
# diffcsp/common/utils.py requires PROJECT_ROOT (and chdirs there); the hydra config names the others
os.environ["PROJECT_ROOT"] = checkout
os.environ.setdefault("HYDRA_JOBS", os.path.dirname(out_file))
os.environ.setdefault("WABDB_DIR", os.path.dirname(out_file))
sys.path.insert(0, checkout)
sys.path.append(shim)        # after site-packages: a real torch_scatter wins
import torch
torch.set_num_threads(threads)
import hydra
from hydra import compose, initialize_config_dir
from torch_geometric.data import Batch, Data
import diffcsp.pl_modules.diffusion   # what hydra would import for cfg.model._target_ (timed with the imports)
t_imported = time.perf_counter()

with initialize_config_dir(config_dir=os.path.join(checkout, "conf"), version_base=None):
    cfg = compose(config_name="default", overrides=["data=perov_5", *overrides])
# exactly as diffcsp/run.py instantiates the model (random weights)
model = hydra.utils.instantiate(cfg.model, optim=cfg.optim, data=cfg.data, logging=cfg.logging, _recursive_=False)
model.eval()
# one SrTiO3 as scripts/sample.py's SampleDataset + DataLoader make it
atoms = [38, 22, 8, 8, 8]
batch = Batch.from_data_list([Data(atom_types=torch.LongTensor(atoms), num_atoms=len(atoms), num_nodes=len(atoms))])

t_built = time.perf_counter()
calls = []
if mode == "count":
    model.decoder.register_forward_hook(lambda module, args, output: calls.append(1))
torch.manual_seed(0)
start = time.perf_counter()
final, traj = model.sample(batch, step_lr=step_lr)
sample_s = time.perf_counter() - start
torch.save({"final": final, "trajectory": traj}, out_file)
t_saved = time.perf_counter()

import torch_scatter
dec = cfg.model.decoder
print("RESULT " + json.dumps({
    "sample_s": sample_s,
    "phases": {"imports": t_imported - t_begin, "build model": t_built - t_imported, "sample": sample_s,
               "torch.save": t_saved - start - sample_s},
    "overrides": overrides,
    "decoder_calls": len(calls) if mode == "count" else None,
    "frames": list(traj["all_frac_coords"].shape),
    "lattice_frames": list(traj["all_lattices"].shape),
    "parameters": sum(p.numel() for p in model.parameters()),
    "decoder_parameters": sum(p.numel() for p in model.decoder.parameters()),
    "model_class": type(model).__module__ + "." + type(model).__name__,
    "config": {"hidden_dim": dec.hidden_dim, "num_layers": dec.num_layers, "num_freqs": dec.num_freqs,
               "edge_style": dec.edge_style, "ln": dec.ln, "ip": dec.ip, "time_dim": cfg.model.time_dim,
               "timesteps": cfg.model.timesteps, "beta_scheduler": cfg.model.beta_scheduler.scheduler_mode,
               "sigma_begin": cfg.model.sigma_scheduler.sigma_begin,
               "sigma_end": cfg.model.sigma_scheduler.sigma_end, "data": cfg.data.root_path.rsplit("/", 1)[-1]},
    "torch": torch.__version__,
    "torch_scatter": getattr(torch_scatter, "__file__", "?"),
    "threads": torch.get_num_threads(),
}))
'''

# Our side, the sampling loop alone: argv = threads, "count" | "time"
OURS_DRIVER = r'''
import json, sys, time
t_begin = time.perf_counter()
threads, mode = int(sys.argv[1]), sys.argv[2]
import torch
torch.set_num_threads(threads)
from diffusion.api import generate, load_model
from diffusion.samplers.network import SamplingNetwork
t_imported = time.perf_counter()

model = load_model("perov_5")
t_loaded = time.perf_counter()
calls = []
if mode == "count":
    original = SamplingNetwork.__call__
    def counted(self, i, state):
        calls.append(1)
        return original(self, i, state)
    SamplingNetwork.__call__ = counted
start = time.perf_counter()
trajectory = generate(model, composition="SrTiO3", sampler="pc", steps=1000, seed=0, record="all")
sample_s = time.perf_counter() - start
print("RESULT " + json.dumps({
    "sample_s": sample_s,
    "phases": {"imports": t_imported - t_begin, "load model": t_loaded - t_imported, "sample": sample_s},
    "network_calls": len(calls) if mode == "count" else None,
    "frames": list(trajectory.frac_coords.shape),
    "lattice_frames": list(trajectory.lattice.shape),
    "parameters": sum(p.numel() for p in model.parameters()),
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
}))
'''


def ours_cli(python: str, out: Path, threads: int) -> list[str]:
    return [python, "-m", "diffusion", "sample", "--checkpoint", "perov_5", "--composition", COMPOSITION,
            "--sampler", "pc", "--steps", str(STEPS), "--start", "noise", "--trajectory", "--out", str(out),
            "--threads", str(threads)]


def perov5_step_lr(checkout: Path) -> float:
    """recommand_step_lr['csp']['perov_5'] from the checkout's scripts/eval_utils.py (read, not imported)."""
    tree = ast.parse((checkout / "scripts" / "eval_utils.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "recommand_step_lr" for t in node.targets):
            return float(ast.literal_eval(node.value)["csp"]["perov_5"])
    raise ValueError("no recommand_step_lr in scripts/eval_utils.py")


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return time.perf_counter() - start, done


def result_of(done: subprocess.CompletedProcess, what: str) -> dict:
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{what} printed no RESULT line:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def stats(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def checkout_commit(checkout: Path) -> str:
    """The checkout's git commit, when it is a git work tree (an exported archive is not)."""
    try:
        done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return "unknown commit"
    return done.stdout.strip()[:12] if done.returncode == 0 else "unknown commit (not a git work tree)"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--diffcsp", type=Path, help="a checkout of github.com/jiaor17/DiffCSP")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that has DiffCSP's dependencies")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save", type=Path, default=RESULTS, help="where the table goes (only when both sides ran)")
    parser.add_argument("--diffcsp-override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra hydra override for DiffCSP's model, e.g. model.decoder.hidden_dim=256 "
                             "(a side experiment: the default is DiffCSP's own Perov-5 configuration)")
    args = parser.parse_args()

    ours_python = sys.executable
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    work = Path(tempfile.mkdtemp(prefix="versus_diffcsp_"))
    load_before = load_average()
    try:
        shim = work / "shim"
        (shim / "torch_scatter").mkdir(parents=True)
        (shim / "torch_scatter" / "__init__.py").write_text(SHIM_INIT)
        (shim / "torch_scatter" / "composite.py").write_text(SHIM_COMPOSITE)
        driver = work / "diffcsp_driver.py"
        driver.write_text(DIFFCSP_DRIVER)
        ours_driver = work / "ours_driver.py"
        ours_driver.write_text(OURS_DRIVER)

        def diffcsp_cmd(mode: str, i: int) -> list[str]:
            return [args.python, str(driver), str(args.diffcsp.resolve()), str(shim), str(work / f"diffcsp_{i}.pt"),
                    str(args.threads), str(step_lr), mode, *args.diffcsp_override]

        def ours_loop_cmd(mode: str) -> list[str]:
            return [ours_python, str(ours_driver), str(args.threads), mode]

        # ---- can DiffCSP's side run? (this first run also counts its decoder calls)
        diffcsp_info, step_lr, why_not = None, None, None
        if args.diffcsp is None:
            why_not = "no --diffcsp given"
        elif not (args.diffcsp / "diffcsp" / "pl_modules" / "diffusion.py").is_file():
            why_not = f"{args.diffcsp} is not a DiffCSP checkout (no diffcsp/pl_modules/diffusion.py)"
        else:
            try:
                step_lr = perov5_step_lr(args.diffcsp)
                print(f"DiffCSP: counting decoder calls (one untimed run, step_lr={step_lr:g}) ...", flush=True)
                _, done = timed(diffcsp_cmd("count", -1), env, work)
                diffcsp_info = result_of(done, "the DiffCSP driver")
            except Exception as error:  # noqa: BLE001 - any failure means: say how to set it up, time ours
                why_not = str(error)
        if why_not is not None:
            print(f"\nDiffCSP's side cannot run: {why_not}\n\n{RECIPE}\nTiming our side only.\n", flush=True)

        print("ours: counting network calls (one untimed run) ...", flush=True)
        _, done = timed(ours_loop_cmd("count"), env, ROOT)
        ours_info = result_of(done, "our in-process driver")

        # ---- the timed rounds, alternating
        times = {k: [] for k in ("ours_cmd", "ours_loop", "diffcsp_cmd", "diffcsp_loop", "bare_ours", "bare_diffcsp")}
        phases = {"ours": [], "diffcsp": []}

        def run_ours(i: int) -> None:
            out = work / f"ours_{i}"
            seconds, done = timed(ours_cli(ours_python, out, args.threads), env, ROOT)
            if done.returncode != 0:
                raise RuntimeError(f"our CLI failed:\n{done.stderr[-3000:]}")
            if not any(out.glob("*.extxyz")):
                raise RuntimeError(f"our CLI wrote no trajectory to {out}")
            shutil.rmtree(out, ignore_errors=True)
            times["ours_cmd"].append(seconds)
            _, done = timed(ours_loop_cmd("time"), env, ROOT)
            result = result_of(done, "our in-process driver")
            times["ours_loop"].append(result["sample_s"])
            phases["ours"].append(result["phases"])

        def run_diffcsp(i: int) -> None:
            seconds, done = timed(diffcsp_cmd("time", i), env, work)
            result = result_of(done, "the DiffCSP driver")
            times["diffcsp_loop"].append(result["sample_s"])
            phases["diffcsp"].append(result["phases"])
            times["diffcsp_cmd"].append(seconds)
            (work / f"diffcsp_{i}.pt").unlink(missing_ok=True)

        for i in range(args.runs):
            times["bare_ours"].append(timed([ours_python, "-c", "pass"], env, work)[0])
            if diffcsp_info is not None:
                times["bare_diffcsp"].append(timed([args.python, "-c", "pass"], env, work)[0])
            order = [run_ours, run_diffcsp] if i % 2 == 0 else [run_diffcsp, run_ours]
            for side in order:
                if side is run_diffcsp and diffcsp_info is None:
                    continue
                side(i)
            print(f"round {i + 1}/{args.runs}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items() if v),
                  flush=True)
        load_after = load_average()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # ---- the table
    bare_ours = statistics.median(times["bare_ours"])
    ours_cmd = [t - bare_ours for t in times["ours_cmd"]]
    rows = []
    have = diffcsp_info is not None
    if have:
        bare_diffcsp = statistics.median(times["bare_diffcsp"])
        diffcsp_cmd_t = [t - bare_diffcsp for t in times["diffcsp_cmd"]]
    for label, ours, theirs in (("(a) whole command − interpreter start-up", ours_cmd, diffcsp_cmd_t if have else None),
                                ("(b) sampling loop alone", times["ours_loop"], times["diffcsp_loop"] if have else None)):
        ob, om = stats(ours)
        tb, tm = stats(theirs) if theirs else (None, None)
        ratio_b = None if tb is None else tb / ob
        ratio_m = None if tm is None else tm / om
        rows.append(f"| {label} | {fmt(tb)} | {fmt(tm)} | {fmt(ob)} | {fmt(om)} | "
                    f"{'—' if ratio_b is None else f'{ratio_b:.1f}×'} | {'—' if ratio_m is None else f'{ratio_m:.1f}×'} |")

    import torch
    date = datetime.date.today().isoformat()
    cmd_ours = " ".join(ours_cli("python", Path("TMP"), args.threads))
    lines = [
        "# DiffCSP's sampler against ours (issue 23)",
        "",
        f"Run {date}: `.venv/bin/python benchmarks/versus_diffcsp.py"
        + (f" --diffcsp {args.diffcsp} --python {args.python}" if args.diffcsp else "")
        + f" --runs {args.runs} --threads {args.threads}`",
        "",
        f"- machine: {os.cpu_count()} CPU cores ({cpu_name()}), {args.threads} torch threads per side "
        f"(torch.set_num_threads and OMP/MKL_NUM_THREADS); load average {load_before} before, {load_after} after "
        "(a shared machine: other processes may have been running)",
        f"- torch: ours {torch.__version__}" + (f", DiffCSP side {diffcsp_info['torch']}" if have else ""),
        f"- work: one {STEPS}-step predictor-corrector trajectory of {COMPOSITION} (5 atoms) from noise, every step "
        f"recorded; runs: {args.runs} per side, each in a fresh process, the sides alternating",
        f"- ours: `{cmd_ours}` (shipped perov_5 checkpoint, {ours_info['parameters']:,} parameters); loop: "
        "`diffusion.api.generate(model, composition=\"SrTiO3\", sampler=\"pc\", steps=1000, seed=0, record=\"all\")` "
        f"in a second fresh process; network evaluations counted: {ours_info['network_calls']}",
    ]
    if have:
        c = diffcsp_info["config"]
        lines.append(
            f"- DiffCSP ({checkout_commit(args.diffcsp)}): `{diffcsp_info['model_class']}` built by hydra from the "
            "checkout's `conf/` (data=perov_5; "
            f"CSPNet hidden {c['hidden_dim']}, {c['num_layers']} layers, {c['num_freqs']} frequencies, edges "
            f"{c['edge_style']}, time_dim {c['time_dim']}, T = {c['timesteps']}, {c['beta_scheduler']} beta, sigma "
            f"{c['sigma_begin']}–{c['sigma_end']}), random weights, {diffcsp_info['parameters']:,} parameters; "
            f"`model.sample(batch, step_lr={step_lr:g})` (Perov-5 CSP value of `recommand_step_lr`, "
            f"scripts/eval_utils.py), trajectory {diffcsp_info['frames']} coords + {diffcsp_info['lattice_frames']} "
            f"lattices torch.save'd; decoder calls counted with a forward hook: {diffcsp_info['decoder_calls']}; "
            f"torch_scatter: {'stand-in written by this script' if str(shim) in diffcsp_info['torch_scatter'] else diffcsp_info['torch_scatter']}")
        if args.diffcsp_override:
            lines.append("- **not DiffCSP's Perov-5 configuration**: hydra overrides "
                         + " ".join(f"`{o}`" for o in args.diffcsp_override))
        lines.append(f"- interpreter start-up subtracted in (a): ours {bare_ours:.3f} s, DiffCSP side {bare_diffcsp:.3f} s "
                     "(median of `python -c pass`)")
    else:
        lines.append(f"- DiffCSP: not run ({why_not})")
    lines += [
        "",
        "| seconds | DiffCSP best | DiffCSP median | ours best | ours median | DiffCSP / ours (best) | DiffCSP / ours (median) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Inside the processes (median seconds; the interpreter's own start-up not included): "
        + "; ".join(f"{name}: " + ", ".join(f"{k} {statistics.median(p[k] for p in runs):.2f}" for k in runs[0])
                    for name, runs in (("ours (in-process driver)", phases["ours"]),
                                       ("DiffCSP driver", phases["diffcsp"])) if runs),
        "",
        "Raw seconds per run (whole commands before the start-up is subtracted): "
        + "; ".join(f"{k} " + ", ".join(f"{t:.3f}" if k.startswith("bare") else f"{t:.2f}" for t in v)
                    for k, v in times.items() if v),
    ]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if have:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(text)
        print(f"saved {args.save}")
    else:
        print(f"(not saved to {args.save}: DiffCSP's side did not run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
