"""Models: shapes, the reference's parameter count, SDCLR's pruning rule, its two branches, and
channels_last cleanliness."""
from __future__ import annotations

import contextlib
import copy
import io
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from bcl_dali.models import DualBatchNorm, MaskedConv2d, SDCLR, SimCLR, resnet

WIDTH = 8

FAMILIES = {"simclr": SimCLR, "sdclr": SDCLR}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def images(batch: int = 4) -> torch.Tensor:
    return torch.randn(batch, 3, 32, 32)


def masked_convs(model: SDCLR) -> list[MaskedConv2d]:
    return [m for m in model.modules() if isinstance(m, MaskedConv2d)]


def dual_norms(model: SDCLR) -> list[DualBatchNorm]:
    return [m for m in model.modules() if isinstance(m, DualBatchNorm)]


def in_branch(model: nn.Module, pruned: bool) -> contextlib.AbstractContextManager:
    return model.branch(pruned=pruned) if isinstance(model, SDCLR) else contextlib.nullcontext()


def plain_copy(model: SDCLR, branch: str) -> SimCLR:
    """A SimCLR holding one SDCLR branch's effective weights: weight * mask for the pruned branch,
    and that branch's BatchNorms. An independent route to what the branch should compute."""
    source = model.state_dict()
    plain = SimCLR("resnet18", WIDTH)
    state = {}
    for key in plain.state_dict():
        module, name = key.rsplit(".", 1)
        if f"{module}.{branch}.{name}" in source:
            state[key] = source[f"{module}.{branch}.{name}"]
        elif f"{module}.mask" in source and name == "weight" and branch == "pruned":
            state[key] = source[key] * source[f"{module}.mask"]
        else:
            state[key] = source[key]
    plain.load_state_dict(state)
    return plain


@pytest.mark.parametrize("family", ["simclr", "sdclr"])
@pytest.mark.parametrize("arch, expansion", [("resnet18", 1), ("resnet50", 4)])
def test_output_shapes(family: str, arch: str, expansion: int) -> None:
    model = FAMILIES[family](arch, WIDTH)
    x = images()
    assert model(x).shape == (4, 128)
    assert model.features(x).shape == (4, 8 * WIDTH * expansion)
    if family == "sdclr":
        model.prune(0.9)
        with model.branch(pruned=True):
            assert model(x).shape == (4, 128)


def test_resnet18_parameter_count_matches_torchvision_with_cifar_stem() -> None:
    reference = torchvision.models.resnet18(weights=None)
    fc = sum(p.numel() for p in reference.fc.parameters())
    stem_7x7, stem_3x3 = reference.conv1.weight.numel(), 64 * 3 * 3 * 3
    expected = sum(p.numel() for p in reference.parameters()) - fc - stem_7x7 + stem_3x3
    assert expected == 11_168_832
    assert sum(p.numel() for p in resnet("resnet18", 64).parameters()) == expected


def test_resnet50_parameter_count_matches_torchvision_with_cifar_stem() -> None:
    reference = torchvision.models.resnet50(weights=None)
    fc = sum(p.numel() for p in reference.fc.parameters())
    expected = sum(p.numel() for p in reference.parameters()) - fc - 64 * 3 * 7 * 7 + 64 * 3 * 3 * 3
    model = resnet("resnet50", 64)
    assert sum(p.numel() for p in model.parameters()) == expected
    assert model.feature_dim == 2048


@pytest.mark.parametrize("family", ["simclr", "sdclr"])
def test_convs_get_kaiming_fan_out_init(family: str) -> None:
    model = FAMILIES[family]("resnet18", 16)
    for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        if conv.weight.numel() >= 2000:
            assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.1)


def test_unknown_architecture_raises_with_choices() -> None:
    with pytest.raises(ValueError, match="resnet18, resnet50"):
        SDCLR("resnet34", WIDTH)


def test_prune_keeps_the_largest_tenth_globally() -> None:
    model = SDCLR("resnet18", WIDTH)
    model.prune(0.9)
    convs = masked_convs(model)
    weights = [c.weight.detach().numpy() for c in convs]
    magnitudes = np.abs(np.concatenate([w.ravel() for w in weights]))
    count = magnitudes.size
    pruned_count = math.ceil(0.9 * count)
    threshold = np.sort(magnitudes)[min(pruned_count, count - 1)]

    kept = sum(int(c.mask.sum()) for c in convs)
    assert kept == count - pruned_count
    for conv, weight in zip(convs, weights):
        np.testing.assert_array_equal(conv.mask.numpy(), (np.abs(weight) >= threshold).astype(np.float32))
    kept_magnitudes = np.concatenate([np.abs(w[c.mask.numpy() == 1]) for c, w in zip(convs, weights)])
    pruned_magnitudes = np.concatenate([np.abs(w[c.mask.numpy() == 0]) for c, w in zip(convs, weights)])
    assert kept_magnitudes.min() > pruned_magnitudes.max()
    assert sum((c.mask == 0).any() for c in convs) > len(convs) // 2, "pruning must be global, spread over layers"


def test_prune_ratio_bounds() -> None:
    model = SDCLR("resnet18", WIDTH)
    model.prune(0.0)
    assert all(bool(c.mask.all()) for c in masked_convs(model))
    with pytest.raises(ValueError, match="prune ratio"):
        model.prune(1.5)


def test_masked_conv_uses_mask_only_in_pruned_branch() -> None:
    model = SDCLR("resnet18", WIDTH)
    model.prune(0.9)
    conv = model.backbone.stages[1][0].conv1
    x = torch.randn(2, conv.in_channels, 16, 16)
    with torch.no_grad():
        dense = conv(x)
        with model.branch(pruned=True):
            pruned = conv(x)
        manual_pruned = F.conv2d(x, conv.weight * conv.mask, stride=conv.stride, padding=conv.padding)
        manual_dense = F.conv2d(x, conv.weight, stride=conv.stride, padding=conv.padding)
    torch.testing.assert_close(pruned, manual_pruned)
    torch.testing.assert_close(dense, manual_dense)
    assert not torch.allclose(dense, pruned)


def test_each_branch_equals_a_plain_network_with_its_weights() -> None:
    model = SDCLR("resnet18", WIDTH)
    model.prune(0.9)
    x = images(8)
    with torch.no_grad(), model.branch(pruned=True):
        model(images(8))
    model.eval()
    for branch, pruned in (("dense", False), ("pruned", True)):
        plain = plain_copy(model, branch).eval()
        with torch.no_grad(), model.branch(pruned=pruned):
            torch.testing.assert_close(model(x), plain(x))
    with torch.no_grad(), model.branch(pruned=True):
        torch.testing.assert_close(model.features(x), plain_copy(model, "dense").eval().features(x))


def test_branch_context_restores_the_active_branch() -> None:
    model = SDCLR("resnet18", WIDTH)
    with model.branch(pruned=True):
        model.features(images())
        assert model.use_pruned
        assert all(m.use_pruned for m in masked_convs(model) + dual_norms(model))
    assert not model.use_pruned
    assert not any(m.use_pruned for m in masked_convs(model) + dual_norms(model))


def test_branches_keep_separate_batchnorm_statistics() -> None:
    model = SDCLR("resnet18", WIDTH)
    model.prune(0.9)
    norms = dual_norms(model)
    assert any(isinstance(n.dense, nn.BatchNorm1d) for n in norms), "the projector's BNs are dual too"

    def stats(branch: str) -> list[torch.Tensor]:
        return [getattr(n, branch).running_mean.clone() for n in norms]

    initial = stats("pruned")
    with torch.no_grad():
        model(images(8))
    after_dense = stats("dense")
    for before, now in zip(initial, stats("pruned")):
        torch.testing.assert_close(now, before, rtol=0, atol=0)
    with torch.no_grad(), model.branch(pruned=True):
        model(images(8) + 1)
    for before, now in zip(after_dense, stats("dense")):
        torch.testing.assert_close(now, before, rtol=0, atol=0)
    for dense, pruned in zip(stats("dense"), stats("pruned")):
        assert not torch.allclose(dense, pruned)


def test_pruned_branch_gradient_reaches_only_kept_weights() -> None:
    model = SDCLR("resnet18", WIDTH)
    model.prune(0.9)
    direction = torch.randn(4, 128)
    with model.branch(pruned=True):
        (model(images()) * direction).sum().backward()
    for conv in masked_convs(model):
        assert conv.weight.grad is not None
        assert bool((conv.weight.grad[conv.mask == 0] == 0).all())
        assert bool((conv.weight.grad[conv.mask == 1] != 0).any())
    for norm in dual_norms(model):
        assert norm.dense.weight.grad is None and norm.pruned.weight.grad is not None

    model.zero_grad(set_to_none=True)
    (model(images()) * direction).sum().backward()
    stem = model.backbone.stem[0]
    assert bool((stem.weight.grad[stem.mask == 0] != 0).any()), "the dense branch ignores masks"


def test_masks_follow_the_current_weights() -> None:
    model = SDCLR("resnet18", WIDTH)
    model.prune(0.9)
    before = [c.mask.clone() for c in masked_convs(model)]
    stem = model.backbone.stem[0]
    assert not bool(stem.mask.all())
    with torch.no_grad():
        stem.weight.mul_(1000)
    model.prune(0.9)
    assert bool(stem.mask.all())
    assert any(not torch.equal(b, c.mask) for b, c in zip(before, masked_convs(model)))


def test_state_dict_round_trip_restores_masks_and_both_batchnorm_sets() -> None:
    model = SDCLR("resnet18", WIDTH)
    model.prune(0.9)
    with torch.no_grad():
        model(images(8))
        with model.branch(pruned=True):
            model(images(8) + 1)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)

    restored = SDCLR("resnet18", WIDTH)
    restored.load_state_dict(torch.load(buffer))
    state, restored_state = model.state_dict(), restored.state_dict()
    assert any(k.endswith(".mask") for k in state)
    assert any(".dense.running_var" in k for k in state) and any(".pruned.running_var" in k for k in state)
    for key, value in state.items():
        torch.testing.assert_close(restored_state[key], value, rtol=0, atol=0, msg=key)
    assert not all(bool(c.mask.all()) for c in masked_convs(restored))


@pytest.mark.parametrize("family", ["simclr", "sdclr"])
def test_channels_last_forward_matches_and_keeps_layout(family: str) -> None:
    model = FAMILIES[family]("resnet18", WIDTH).eval()
    pruned_branch = family == "sdclr"
    if pruned_branch:
        model.prune(0.9)
    x = images()
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x_fast = x.to(memory_format=torch.channels_last)

    convs = [m for m in fast.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    if pruned_branch:
        fast.prune(0.9)
        for conv, reference in zip(masked_convs(fast), masked_convs(model)):
            assert conv.mask.is_contiguous(memory_format=torch.channels_last)
            assert (conv.weight * conv.mask).is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(conv.mask, reference.mask, rtol=0, atol=0)

    layouts = []

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if output.ndim == 4:
            layouts.append((type(module).__name__, output.is_contiguous(memory_format=torch.channels_last)))

    hooks = [m.register_forward_hook(record) for m in fast.modules()]
    branches = (False, True) if pruned_branch else (False,)
    with torch.no_grad():
        torch.testing.assert_close(fast.features(x_fast), model.features(x), atol=1e-5, rtol=1e-5)
        for pruned in branches:
            with in_branch(model, pruned), in_branch(fast, pruned):
                torch.testing.assert_close(fast(x_fast), model(x), atol=1e-5, rtol=1e-5)
    for hook in hooks:
        hook.remove()
    assert layouts and all(is_channels_last for _, is_channels_last in layouts), layouts


def test_the_imagenet_stem_is_torchvisions_resnet50():
    """Independently built: torchvision's ResNet-50 without its classifier has the same parameters."""
    ours = resnet("resnet50", 64, stem="imagenet")
    theirs = torchvision.models.resnet50()
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for name, p in theirs.named_parameters() if not name.startswith("fc."))
    assert ours(torch.zeros(1, 3, 64, 64)).shape == (1, 2048)
    assert ours.stem(torch.zeros(1, 3, 64, 64)).shape == (1, 64, 16, 16)  # 7x7 stride 2, then the max-pool
