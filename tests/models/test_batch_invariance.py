"""Batch-invariant layers: the same numbers as the stock layers, and the same bits at any batch."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from torch import nn

from models.batch_invariance import batch_invariant, is_batch_invariant
from models.registry import manifest_load


@pytest.fixture(scope="module")
def unet() -> Any:
    manifest = manifest_load("embedded")
    return UNet2DConditionModel.from_pretrained(manifest.folder / "unet").eval()


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (tests/conftest.py)."""


def _inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    sample = torch.randn(2, 4, 16, 16, generator=generator)
    hidden = torch.randn(2, 16, 64, generator=generator)
    rows = torch.arange(batch) % 2
    return sample[rows], hidden[rows]


def test_the_rewritten_unet_gives_the_same_bits_for_an_image_at_any_batch(unet: Any) -> None:
    model = copy.deepcopy(unet)
    assert batch_invariant(model) > 0 and is_batch_invariant(model)
    assert batch_invariant(model) == 0  # idempotent
    with torch.inference_mode():
        outputs = {}
        for batch in (2, 4, 16, 64):
            sample, hidden = _inputs(batch)
            outputs[batch] = model(sample, torch.tensor(500), encoder_hidden_states=hidden).sample[:2]
    for batch in (4, 16, 64):
        assert torch.equal(outputs[batch], outputs[2]), batch


def test_the_rewritten_layers_compute_what_the_stock_ones_do(unet: Any) -> None:
    model = copy.deepcopy(unet)
    batch_invariant(model)
    sample, hidden = _inputs(16)
    with torch.inference_mode():
        stock = unet(sample, torch.tensor(500), encoder_hidden_states=hidden).sample
        rewritten = model(sample, torch.tensor(500), encoder_hidden_states=hidden).sample
    assert torch.allclose(stock, rewritten, atol=1e-4, rtol=1e-4)
    linear, conv = nn.Linear(8, 5), nn.Conv2d(6, 3, 1)
    rows, image = torch.randn(7, 8), torch.randn(3, 6, 4, 5)
    expected = (F.linear(rows, linear.weight, linear.bias), conv(image))
    batch_invariant(linear)
    batch_invariant(conv)
    with torch.no_grad():
        assert torch.allclose(linear(rows), expected[0], atol=1e-6)
        assert torch.allclose(linear(rows[:1].expand(7, -1)), linear(rows[:1]).expand(7, -1))
        assert torch.allclose(conv(image), expected[1], atol=1e-6)


def test_the_layers_left_as_they_are_give_the_same_bits_at_any_batch_here(unet: Any) -> None:
    """The claim ``batch_invariant`` rests on, checked for this model's shapes on this machine:
    linear layers over tokens and 3x3 convolutions compute an image's rows alike at any batch."""
    shapes: dict[str, set[tuple[int, ...]]] = {"linear": set(), "conv": set()}

    def record(module: nn.Module, args: tuple[torch.Tensor, ...], _: object) -> None:
        if isinstance(module, nn.Linear) and args[0].dim() == 3:
            shapes["linear"].add((args[0].shape[1], module.in_features, module.out_features))
        elif isinstance(module, nn.Conv2d) and module.kernel_size != (1, 1):
            shapes["conv"].add((id(module),))

    hooks = [m.register_forward_hook(record) for m in unet.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    sample, hidden = _inputs(2)
    with torch.inference_mode():
        unet(sample, torch.tensor(500), encoder_hidden_states=hidden)
    for hook in hooks:
        hook.remove()
    assert shapes["linear"]
    generator = torch.Generator().manual_seed(3)
    for tokens, features_in, features_out in sorted(shapes["linear"]):
        weight = torch.randn(features_out, features_in, generator=generator)
        x = torch.randn(64, tokens, features_in, generator=generator)
        alone = F.linear(x[:2], weight)
        for batch in (4, 16, 64):
            assert torch.equal(F.linear(x[:batch], weight)[:2], alone), (tokens, features_in, features_out, batch)
    convs = [m for m in unet.modules() if isinstance(m, nn.Conv2d) and (id(m),) in shapes["conv"]]
    for conv in convs[:6]:
        x = torch.randn(64, conv.in_channels, 8, 8, generator=generator)
        with torch.inference_mode():
            alone = conv(x[:2])
            for batch in (4, 16, 64):
                assert torch.equal(conv(x[:batch])[:2], alone), (conv, batch)


def test_a_rewritten_layer_follows_its_parameters_when_they_are_loaded_or_replaced() -> None:
    linear, conv, bare = nn.Linear(8, 5), nn.Conv2d(6, 3, 1), nn.Linear(8, 5, bias=False)
    for layer in (linear, conv, bare):
        batch_invariant(layer)
    rows, image = torch.randn(4, 8), torch.randn(2, 6, 4, 5)
    with torch.no_grad():
        linear.load_state_dict({"weight": torch.ones(5, 8), "bias": torch.zeros(5)})
        assert torch.allclose(linear(rows), rows.sum(dim=1, keepdim=True).expand(4, 5), atol=1e-5)
        linear.weight = nn.Parameter(torch.zeros(5, 8))  # a new parameter object, as assign=True loading makes
        assert torch.equal(linear(rows), torch.zeros(4, 5))
        assert torch.allclose(bare(rows), F.linear(rows, bare.weight), atol=1e-6)
        conv.load_state_dict({"weight": torch.ones(3, 6, 1, 1), "bias": torch.zeros(3)})
        assert torch.allclose(conv(image), image.sum(dim=1, keepdim=True).expand(2, 3, 4, 5), atol=1e-5)
        linear.to(torch.float64)
        assert linear(rows.double()).dtype == torch.float64
