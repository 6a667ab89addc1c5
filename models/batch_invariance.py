"""Make a denoiser's result for one image independent of the batch it is computed in.

A variant's seed fixes its starting noise, but on a CPU that is not enough for the same image
alone and inside a batch: oneDNN and the BLAS pick other kernels for other matrix shapes, and a
product whose rows are the batch then sums in another order. The last bits differ, they grow over
the denoising steps, and a few pixels of the 8-bit image come out one level apart (measured on
the embedded model: latents up to 1e-4 apart after one step).

Measured on the embedded model's layers, the products that change with the batch are those with
one row per image: the timestep embedding's linear layers (2 rows for one image with guidance,
16 for eight) and 1x1 convolutions (oneDNN switches algorithm with the batch). Linear layers over
tokens (at least 16 rows per image), 3x3 convolutions, normalisation and attention gave the same
bits at every batch size (``tests/models/test_batch_invariance.py`` checks those shapes on the
machine it runs on). ``batch_invariant`` rewrites the first two kinds so that every image's rows
go through a product of the same shape whatever the batch: one row at a time for linear layers
over rows (computed once when all rows are equal, as the timestep embedding's are), and a batched
matrix product (``torch.bmm``: one product per image) for 1x1 convolutions. VAE decoding is made
per image by the VAE's own slicing. The cost, measured on the embedded model at batch 1 (one
thread, calls alternated): about 1% (``python -m bench.generate`` puts the engine within noise of
the raw diffusers call at batch 1, 8 and 32).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

_MARK = "_greenlight_batch_invariant"


def batch_invariant(module: nn.Module) -> int:
    """Rewrite ``module``'s linear layers and 1x1 convolutions in place; returns how many.

    Idempotent: a layer already rewritten is left alone. The weights are shared, not copied, so
    loading or moving the module afterwards still works.
    """
    count = 0
    for layer in module.modules():
        if getattr(layer, _MARK, False):
            continue
        forward: Callable[[torch.Tensor], torch.Tensor] | None = None
        if isinstance(layer, nn.Linear):
            forward = _linear_forward(layer)
        elif isinstance(layer, nn.Conv2d) and _is_pointwise(layer):
            forward = _pointwise_forward(layer)
        if forward is not None:
            layer.forward = forward
            setattr(layer, _MARK, True)
            count += 1
    return count


def is_batch_invariant(module: nn.Module) -> bool:
    """Whether ``batch_invariant`` has rewritten any of ``module``'s layers."""
    return any(getattr(layer, _MARK, False) for layer in module.modules())


def _is_pointwise(conv: nn.Conv2d) -> bool:
    return (
        conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding in ((0, 0), "valid")
        and conv.dilation == (1, 1)
        and conv.groups == 1
    )


def _linear_forward(layer: nn.Linear) -> Callable[[torch.Tensor], torch.Tensor]:
    # Called about a hundred times per denoising step, mostly on tokens (3 dimensions), where it
    # only passes through: that path stays as short as nn.Linear's own forward. The parameters are
    # read from the layer's dict at each call (not captured), so loading or moving still works.
    parameters = cast(dict[str, torch.Tensor], layer._parameters)  # bias: None when the layer has none
    linear = F.linear

    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[0] == 1:
            return linear(x, parameters["weight"], parameters["bias"])
        weight, bias = parameters["weight"], parameters["bias"]
        if torch.equal(x[1:], x[:-1]):  # the timestep embedding: one row, repeated
            return linear(x[:1], weight, bias).expand(x.shape[0], -1)
        return torch.cat([linear(row, weight, bias) for row in x.split(1)])

    return forward


def _pointwise_forward(layer: nn.Conv2d) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return layer._conv_forward(x, layer.weight, layer.bias)
        batch, channels, height, width = x.shape
        out_channels = layer.out_channels
        stacked = layer.weight.view(out_channels, channels).unsqueeze(0).expand(batch, -1, -1)
        flat = x.reshape(batch, channels, height * width)
        if layer.bias is None:
            product = torch.bmm(stacked, flat)
        else:
            product = torch.baddbmm(layer.bias.view(1, -1, 1).expand(batch, -1, 1), stacked, flat)
        return product.view(batch, out_channels, height, width)

    return forward


def pipeline_batch_invariant(pipe: Any, *, vae_slicing: bool = True) -> bool:
    """Apply ``batch_invariant`` to a pipeline's denoiser and, with ``vae_slicing``, switch on
    per-image VAE decoding (its first 3x3 convolution, 4 channels in, also changes with the batch).

    Returns whether anything was rewritten (False for a pipeline with no UNet or transformer).
    """
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    if not isinstance(denoiser, nn.Module):
        return False
    batch_invariant(denoiser)
    vae: Any = getattr(pipe, "vae", None)
    if vae_slicing and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    return True
