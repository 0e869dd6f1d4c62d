"""One network step recorded once per batch shape and replayed: CUDA graphs for the GPU path.

On a GPU a small crystal's step is launch-bound: the denoiser is a few hundred small kernels, each
launched by the CPU, so the GPU waits for the launches (2-4% of its matrix-product peak at batch 256
when measured, docs/performance.md#on-a-gpu). A CUDA graph records the kernels of one call and
replays them with a single launch. The recording reads and writes fixed ("static") buffers, so a
replay copies the call's inputs into the static inputs, replays, and hands back copies of the static
outputs (the next replay overwrites them; a recorder may keep the previous step's outputs).

``ReplayedStep`` holds that protocol and takes the recording mechanism as a ``Recorder``:
``CudaGraphRecorder`` on CUDA devices; tests on a machine without a GPU use a recorder that
"replays" by calling the function on the static buffers, which checks everything here but the
graph itself (tests/test_graph_replay.py).
"""
from __future__ import annotations

import threading
import warnings
from typing import Callable, Protocol, Sequence

import torch

Step = Callable[..., tuple[torch.Tensor, ...]]
WARMUP_CALLS = 3   # before recording: lazy initialisation (cuBLAS handles, TorchScript's profiling runs) is not recordable


class Recorder(Protocol):
    def record(self, step: Step, static_inputs: Sequence[torch.Tensor]) -> tuple[Callable[[], None], tuple[torch.Tensor, ...]]:
        """(replay, static outputs): ``replay()`` recomputes the static outputs from the static inputs."""


class CudaGraphRecorder:
    """Records ``step`` as a ``torch.cuda.CUDAGraph`` after warm-up calls on a side stream (as PyTorch's CUDA
    graph notes prescribe)."""

    def record(self, step: Step, static_inputs: Sequence[torch.Tensor]):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                step(*static_inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = step(*static_inputs)
        return graph.replay, tuple(outputs)


class ReplayedStep:
    """``step(*inputs) -> tuple of tensors`` for inputs of one fixed set of shapes, replayed from a recording.

    ``inputs`` that never change along a trajectory (the graph's index tensors) can be given as ``constants``:
    they are part of the recording and are not copied per call. If recording fails (an operation that a
    CUDA graph cannot hold), the step runs as it is, with one warning.
    """

    def __init__(self, step: Step, constants: Sequence[torch.Tensor] = (), recorder: Recorder | None = None):
        self.step, self.constants = step, tuple(constants)
        self.recorder = recorder if recorder is not None else CudaGraphRecorder()
        self._static: tuple[torch.Tensor, ...] | None = None
        self._outputs: tuple[torch.Tensor, ...] = ()
        self._replay: Callable[[], None] | None = None
        self._lock = threading.Lock()   # one set of static buffers: callers in several threads take turns
        self.failed = False

    @property
    def recorded(self) -> bool:
        return self._replay is not None

    def _record(self, inputs: Sequence[torch.Tensor]) -> None:
        self._static = tuple(x.clone() for x in inputs)
        try:
            self._replay, self._outputs = self.recorder.record(self.step, self._static + self.constants)
        except Exception as error:   # e.g. an op that synchronises with the host: run it eagerly from now on
            self.failed = True
            warnings.warn(f"recording the sampling step as a graph failed, running it step by step: {error}")

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with self._lock:
            return self._call(inputs)

    def _call(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if self.failed:
            return tuple(self.step(*inputs, *self.constants))
        if self._static is None:
            self._record(inputs)
            if self.failed:
                return tuple(self.step(*inputs, *self.constants))
        if len(inputs) != len(self._static) or any(x.shape != s.shape or x.dtype != s.dtype
                                                   for x, s in zip(inputs, self._static)):
            raise ValueError("a replayed step takes inputs of the shapes it was recorded with")
        for static, value in zip(self._static, inputs):
            static.copy_(value)
        self._replay()
        return tuple(out.clone() for out in self._outputs)
