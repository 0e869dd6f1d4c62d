#!/usr/bin/env bash
# One GPU lease (the `device` tool) spent in one prepared command: train the three models that need the
# most compute on the GPU (all three at once: each is launch-bound and leaves the GPU mostly idle), then
# check the CUDA path end to end (sample, evaluate) and time sampling with benchmarks/sampling_speed.py.
#
# Run from the repository root on the GPU machine, carrying two ignored folders made here:
#   .whl      pymatgen, pymatgen-core, monty, spglib, ruamel.yaml, uncertainties, palettable, orjson, SMACT
#             wheels for the GPU machine's Python (3.12; it has torch, numpy, scipy, pandas already)
#   .gpudata  gpudata.tar.xz: cache/ (this repo's parsed-dataset cache), compressed so the working tree
#             stays inside the 64 MiB a call carries (the datasets themselves travel in data/)
# Made here (both ignored through .git/info/exclude) with:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl pymatgen==2026.10.24 pymatgen-core==2026.10.16 monty==2026.10.21 \
#     spglib==2.8.0 ruamel.yaml==0.19.1 uncertainties==3.2.3 palettable==3.3.3 orjson==3.13.0 SMACT==4.0.2
#   mkdir -p /tmp/g/cache && cp .cache/*.pt /tmp/g/cache/ && mkdir -p .gpudata && tar -C /tmp/g -cJf .gpudata/gpudata.tar.xz cache
# Results land under $OUT: one tar per trained checkpoint (weights + card) and logs.tar. Environment:
# TRAIN_MINUTES (5), CHECKS=0 to train only, PEROV_GEN=0 to skip perov_5_gen, MP20_ARGS / CARBON_ARGS for
# extra train flags. On 2026-11-27 the first lease ran it as is, the second as
#   CHECKS=0 PEROV_GEN=0 TRAIN_MINUTES=4 MP20_ARGS="--lr 3e-4 --space-group-drop 0.5" CARBON_ARGS="--lr 3e-4"
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-out/gpu}
TRAIN_MINUTES=${TRAIN_MINUTES:-5}
CHECKS=${CHECKS:-1}          # 0: train only (a second, shorter lease)
MP20_ARGS=${MP20_ARGS:-}     # extra train flags, e.g. "--lr 3e-4 --space-group-drop 0.5"
CARBON_ARGS=${CARBON_ARGS:-}
PEROV_GEN=${PEROV_GEN:-1}    # 0: leave perov_5_gen alone
mkdir -p "$OUT" /tmp/logs
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site || exit 1
mkdir -p /tmp/gpudata && tar -C /tmp/gpudata -xJf .gpudata/gpudata.tar.xz || exit 1
export CRYSTAL_DIFFUSION_CACHE=/tmp/gpudata/cache
pack_logs() { tar -C /tmp -cf "$OUT/logs.tar" logs; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import sys, torch; print(sys.version); print(torch.__version__, torch.cuda.get_device_name())"; } \
  > /tmp/logs/env.txt 2>&1
cat /tmp/logs/env.txt

if [ "$CHECKS" = 1 ]; then  # smoke: the CUDA sampling path, before minutes go into training
  timeout 60 python3 -m diffusion sample --checkpoint perov_5 --composition SrTiO3 --num-samples 4 --sampler ddim \
    --steps 50 --device cuda --out /tmp/smoke > /tmp/logs/smoke.log 2>&1
  echo "smoke rc=$?"; tail -3 /tmp/logs/smoke.log
  timeout 60 python3 -m diffusion sample --checkpoint perov_5 --composition SrTiO3 --num-samples 4 --sampler ddim \
    --steps 50 --device cuda --precision bfloat16 --out /tmp/smoke_bf16 > /tmp/logs/smoke_bf16.log 2>&1
  echo "smoke bfloat16 rc=$?"; tail -3 /tmp/logs/smoke_bf16.log; pack_logs
fi

common="--device cuda --threads 4 --max-minutes $TRAIN_MINUTES --max-steps 1000000 --checkpoint-every 500"
python3 -m diffusion train --data data/mp_20/val.csv.gz data/mp_20/train_part.csv.gz \
  --out checkpoints/mp_20.pt --property formation_energy_per_atom --space-group --batch-size 512 --val-every 1000 \
  $common $MP20_ARGS > /tmp/logs/train_mp_20.log 2>&1 &
python3 -m diffusion train --data data/carbon_24/val.csv.gz --out checkpoints/carbon_24.pt --task gen \
  --max-atoms 24 --batch-size 256 --val-every 500 $common $CARBON_ARGS > /tmp/logs/train_carbon_24.log 2>&1 &
[ "$PEROV_GEN" = 1 ] && python3 -m diffusion train --data data/perov_5/val.csv.gz --out checkpoints/perov_5_gen.pt --task gen \
  --property heat_ref --batch-size 512 --val-every 500 $common > /tmp/logs/train_perov_5_gen.log 2>&1 &
wait
names="mp_20 carbon_24"; [ "$PEROV_GEN" = 1 ] && names="$names perov_5_gen"
for name in $names; do
  tail -c 600 /tmp/logs/train_$name.log; echo
  tar -C checkpoints -cf "$OUT/$name.tar" $name.pt $name.json $name.md
done
pack_logs
[ "$CHECKS" = 1 ] || exit 0

# evaluation end to end on the GPU (sampling there, matching on the CPU)
timeout 90 python3 -m diffusion evaluate --checkpoint perov_5 --sampler ddim --steps 100 --limit 100 --device cuda \
  --json /tmp/logs/eval_perov_5_cuda.json > /tmp/logs/eval_perov_5_cuda.log 2>&1
echo "evaluate rc=$?"; tail -5 /tmp/logs/eval_perov_5_cuda.log; pack_logs

# float32 and bfloat16 (the default where bfloat16 is native); the trajectory rows alternate the two
# the CUDA-graph replay first (tests/test_graph_replay.py's GPU test), then the speed with and without it
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_graph_replay.py > /tmp/logs/graph_replay_test.log 2>&1
echo "graph replay tests rc=$?"; tail -3 /tmp/logs/graph_replay_test.log
timeout 200 python3 benchmarks/sampling_speed.py --device cuda --threads 4 > /tmp/logs/sampling_speed_cuda.md 2>&1
echo "benchmark rc=$?"; cat /tmp/logs/sampling_speed_cuda.md; pack_logs
timeout 150 python3 benchmarks/sampling_speed.py --device cuda --threads 4 --no-cuda-graphs --trajectory-runs 3 \
  > /tmp/logs/sampling_speed_cuda_no_graphs.md 2>&1
echo "benchmark (no CUDA graphs) rc=$?"; head -12 /tmp/logs/sampling_speed_cuda_no_graphs.md; pack_logs
