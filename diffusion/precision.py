"""The network's matrix products in bfloat16 while the sampler stays float32 (sampling only).

On a CPU with AVX512-BF16 (AMD Zen 4, Intel Cooper Lake and later) and on GPUs, a bfloat16 matrix
product runs 2-3x faster than a float32 one, and the 20-atom sampling step is mostly matrix
products (the edge MLP). ``with_precision(model, "bfloat16")`` returns a copy of the model whose
``nn.Linear`` layers keep bfloat16 weights (``ReducedPrecisionLinear``: the input is cast to the
weights' dtype, the output back to the input's). The network follows the weights' dtype where it
pays (``model.py``): the per-pair work (gathered node projections, the edge MLP and its
activations, the Fourier-feature projection) runs in bfloat16, with the casts on the N atoms
rather than the N^2 pairs. What stays float32:

- the sampler's state (lattice latent, fractional coordinates) and schedule;
- the residual stream, layer norms, the sums over pairs and atoms, the network's outputs;
- the sinusoidal time features and the Fourier angles, which reach 2 pi K and would lose their
  meaning at bfloat16's 8-bit mantissa (their sines and cosines are rounded only afterwards).

Products accumulate in float32 inside oneDNN / cuBLAS; their results carry about 3 significant
digits. Measured on the validation splits, the match rate is unchanged (docs/performance.md#bfloat16).
Training never uses this: gradients in bfloat16 are a different question.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .crystal_diffusion import CrystalDiffusion

Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")
_DTYPES = {"bfloat16": torch.bfloat16}
_CACHE_ATTRIBUTE = "_reduced_precision_copies"


class ReducedPrecisionLinear(nn.Module):
    """``nn.Linear`` with its weights stored in ``dtype``: y = (x.to(dtype) W^T + b).to(x.dtype).

    The weights are buffers, not parameters: the copy is for inference and is rebuilt from the
    float32 model whenever that one changes.
    """

    def __init__(self, linear: nn.Linear, dtype: torch.dtype):
        super().__init__()
        self.register_buffer("weight", linear.weight.detach().to(dtype).clone())
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(dtype).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(self.weight.dtype), self.weight, self.bias).to(x.dtype)


def _lower_linears(module: nn.Module, dtype: torch.dtype) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, ReducedPrecisionLinear(child, dtype))
        else:
            _lower_linears(child, dtype)


def _weights_stamp(model: nn.Module) -> tuple:
    """Changes whenever a parameter is replaced or updated in place (optimizer steps, load_state_dict)."""
    return tuple((id(p), p._version) for p in model.parameters())


def check_precision(precision: str) -> None:
    """ValueError naming the choices unless ``precision`` is one of ``PRECISIONS``."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")


def with_precision(model: CrystalDiffusion, precision: str) -> CrystalDiffusion:
    """``model`` itself for "float32"; for "bfloat16" a copy with bfloat16 matrix products.

    The copy is cached on the model and rebuilt when the model's weights change, so repeated
    samples do not copy again and a model that keeps training is sampled with its current weights.
    """
    check_precision(precision)
    if precision == "float32":
        return model
    cache: dict = model.__dict__.setdefault(_CACHE_ATTRIBUTE, {})
    stamp = _weights_stamp(model)
    cached = cache.get(precision)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    copy = CrystalDiffusion(model.model_config, model.process, model.normalization)
    copy.load_state_dict(model.state_dict())
    copy = copy.to(model.device).eval()
    _lower_linears(copy.denoiser, _DTYPES[precision])
    copy.requires_grad_(False)
    cache[precision] = (stamp, copy)
    return copy


def fast_bfloat16(device: torch.device | str) -> bool:
    """Whether bfloat16 matrix products are native here (AVX512-BF16 / AMX on a CPU; any recent GPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = [getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None)]
        return any(check is not None and check() for check in checks)
    return False
