"""Sampling speed, throughput, efficiency and memory (issue 5). Prints Markdown tables.

Run:  .venv/bin/python benchmarks/sampling_speed.py [--device cpu|cuda] [--threads 2] [--quick] [--trajectory-runs 10]
          [--precisions float32 bfloat16] [--no-cuda-graphs]

Models: the shipped perov_5 and mp_20 checkpoints when present, else freshly initialised
models of the same size (speed does not depend on the weights); perov_5_small (the 0.6M-parameter
perovskite model, hidden 128) gets its own 5-atom rows when it is shipped. Efficiency = FLOPs of the
denoiser (counted by torch.utils.flop_counter) per second of sampling, divided by the
machine's own peak measured in the same run with a large matrix product of the same precision.
Each precision (``SamplingConfig.precision``; bfloat16 by default only where the hardware has native
bfloat16 products) gets its own rows; trajectory runs of the precisions alternate, so a drift of
the shared machine's speed hits both alike.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
from functools import partial
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import torch  # noqa: E402

from diffusion.checkpoints import load_model  # noqa: E402
from diffusion.precision import PRECISIONS, fast_bfloat16  # noqa: E402
from diffusion.sampling import SampleRequest, SamplingConfig, sample  # noqa: E402

PEROVSKITE = (38, 22, 8, 8, 8)                      # SrTiO3
TWENTY = (56,) * 4 + (29,) * 4 + (8,) * 12          # a 20-atom oxide cell


def model_for(name: str, device: str):
    try:
        return load_model(name, device), "trained"
    except Exception:
        from diffusion.train import TrainConfig, build_model
        from diffusion.data import DATA_DIR, load_csv
        crystals = load_csv(DATA_DIR / "perov_5" / "val.csv.gz").crystals[:50]
        return build_model(TrainConfig(data=("x",), out="x"), crystals).to(device).eval(), "untrained"


def small_model(device: str):
    """The shipped perov_5_small checkpoint, or None (it is an extra: no stand-in is timed)."""
    try:
        return load_model("perov_5_small", device)
    except Exception:
        return None


def sample_times(model, atoms, batch: int, config: SamplingConfig, repeats: int = 1) -> list[float]:
    """Wall seconds of `repeats` identical sampling runs."""
    request = SampleRequest((len(atoms),) * batch, tuple(range(batch)), (tuple(atoms),) * batch)
    times = []
    for _ in range(repeats):
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        sample(model, request, config)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def timed_sample(model, atoms, batch: int, config: SamplingConfig, repeats: int = 1) -> float:
    """Best of `repeats` runs (this shared machine's speed drifts; the best is the least disturbed)."""
    return min(sample_times(model, atoms, batch, config, repeats))


def denoiser_flops(model, atoms, batch: int) -> float:
    """FLOPs of one network evaluation for `batch` crystals of composition `atoms`."""
    from torch.utils.flop_counter import FlopCounterMode

    device = model.device
    n = torch.full((batch,), len(atoms), device=device)
    types = torch.tensor(list(atoms) * batch, device=device)
    frac = torch.rand(len(types), 3, device=device)
    x = torch.zeros(batch, 6, device=device)
    b = torch.repeat_interleave(torch.arange(batch, device=device), n)
    t = torch.full((batch,), 500, device=device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.predict(types, frac, x, n, b, t)
    return float(counter.get_total_flops())


def peak_flops(device: str, precision: str = "float32") -> float:
    size = 2048 if device == "cpu" else 8192
    dtype = getattr(torch, precision)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best


def _proc_status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def memory_child(record: str, device: str, steps: int) -> None:
    """Run in a fresh process: sample 256 perovskites and print the memory the sampling itself
    added on top of the loaded model, in MB (peak during sampling minus the resident size before).

    CPU: the kernel's resident-set peak (VmHWM) is reset just before sampling via
    /proc/self/clear_refs, so model loading and imports are not counted. CUDA: peak allocated.
    """
    model, _ = model_for("perov_5", device)
    stride = 1
    if record.startswith("all/"):
        record, stride = "all", int(record.split("/")[1])
    config = SamplingConfig(sampler="ddpm", steps=steps, record=record, record_stride=stride)
    timed_sample(model, PEROVSKITE, 2, SamplingConfig(sampler="ddpm", steps=2))  # warm-up: trace, allocator
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        timed_sample(model, PEROVSKITE, 256, config)
        print((torch.cuda.max_memory_allocated() - before) / 2 ** 20)
        return
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM to the current resident size
    before = _proc_status_mb("VmRSS")
    timed_sample(model, PEROVSKITE, 256, config)
    print(_proc_status_mb("VmHWM") - before)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smaller batches, for a smoke run")
    parser.add_argument("--memory-child", default=None)
    parser.add_argument("--memory-steps", type=int, default=1000, help="steps of the memory probe")
    parser.add_argument("--trajectory-runs", type=int, default=5,
                        help="runs per trajectory row (best is reported; with more than 5, median and range too)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=None,
                        help="network precisions to time (default: float32, and bfloat16 where it is native)")
    parser.add_argument("--no-cuda-graphs", action="store_true",
                        help="on a GPU, run each traced step without replaying it from a CUDA graph (for comparison)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    make_config = partial(SamplingConfig, cuda_graphs=not args.no_cuda_graphs)
    precisions = args.precisions or (["float32", "bfloat16"] if fast_bfloat16(args.device) else ["float32"])
    if args.memory_child:
        memory_child(args.memory_child, args.device, args.memory_steps)
        return
    perov, perov_kind = model_for("perov_5", args.device)
    mp, mp_kind = model_for("mp_20", args.device)
    small = small_model(args.device)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} threads"
    graphs = "" if args.device != "cuda" else ("; CUDA graphs off" if args.no_cuda_graphs else "; CUDA graphs on")
    print(f"device: {device_name}{graphs}; torch {torch.__version__}; perov_5 {perov_kind}, mp_20 {mp_kind}"
          f"{', perov_5_small trained' if small is not None else ''}\n")
    # size -> (model, composition, trajectory row label): every table below runs these cases
    cases = {"5-atom": (perov, PEROVSKITE, "5-atom perovskite (perov_5 model)")}
    if small is not None:
        cases["5-atom small"] = (small, PEROVSKITE, "5-atom perovskite (perov_5_small model)")
    cases["20-atom"] = (mp, TWENTY, "20-atom crystal (mp_20 model)")

    runs = max(1, args.trajectory_runs)
    spread = runs > 5
    print("| trajectory (1000 steps, every frame recorded) | precision | seconds (best of %d) |%s"
          % (runs, " median | range |" if spread else ""))
    print("|---|---|---|" + ("---|---|" if spread else ""))
    for model, atoms, label in cases.values():
        times: dict[str, list[float]] = {p: [] for p in precisions}
        for precision in precisions:  # warm-up: trace, reduced-precision copy
            timed_sample(model, atoms, 1, make_config(sampler="ddpm", steps=10, precision=precision))
        for _ in range(runs):         # alternate the precisions, so the machine's drift hits both alike
            for precision in precisions:
                times[precision] += sample_times(model, atoms, 1, make_config(sampler="ddpm", record="all",
                                                                                 precision=precision))
        for precision in precisions:
            t = times[precision]
            extra = f" {statistics.median(t):.2f} | {min(t):.2f}-{max(t):.2f} |" if spread else ""
            print(f"| {label} | {precision} | {min(t):.2f} |{extra}")

    # every step costs the same, so 1000-step throughput is timed on 100 steps and divided by 10
    columns = [(size, p) for size in cases for p in precisions]
    print("\nThroughput, 1000 ddpm steps, final frame only:\n")
    print("| batch | " + " | ".join(f"structures / s, {size}, {p}" for size, p in columns)
          + " |\n|---|" + "---|" * len(columns))
    scale = 10
    for batch in ((1, 16, 64) if args.quick else (1, 16, 256)):
        repeats = 3 if batch <= 16 else 1  # best of several: this shared machine's speed varies by ~20%
        cells = []
        for size, precision in columns:
            model, atoms, _ = cases[size]
            final = make_config(sampler="ddpm", record="final", steps=100, precision=precision)
            cells.append(batch / (timed_sample(model, atoms, batch, final, repeats) * scale))
        print(f"| {batch} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")

    print("\n| efficiency (batch 256, 100 ddpm steps) | value |")
    print("|---|---|")
    batch = 64 if args.quick else 256
    for precision in precisions:
        peak = peak_flops(args.device, precision)
        for name, (model, atoms, _) in cases.items():
            config = make_config(sampler="ddpm", steps=100, record="final", precision=precision)
            seconds = timed_sample(model, atoms, batch, config)
            achieved = 100 * denoiser_flops(model, atoms, batch) / seconds
            print(f"| {name}, {precision}: achieved GFLOP/s | {achieved / 1e9:.1f} |")
            print(f"| {name}, {precision}: fraction of measured {precision} matmul peak ({peak / 1e9:.0f} GFLOP/s) "
                  f"| {achieved / peak:.1%} |")

    print(f"\n| memory added by sampling 256 perovskites x {args.memory_steps} ddpm steps | MB |")
    print("|---|---|")
    for record in ("final", "all/10", "all"):
        out = subprocess.run([sys.executable, __file__, "--memory-child", record, "--device", args.device,
                              "--threads", str(args.threads), "--memory-steps", str(args.memory_steps)],
                             capture_output=True, text=True)
        lines = out.stdout.strip().splitlines()
        label = {"final": "final frame only", "all/10": "every 10th frame", "all": "every frame"}[record]
        value = f"{float(lines[-1]):.0f}" if out.returncode == 0 and lines else f"failed: {out.stderr[-200:]}"
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
