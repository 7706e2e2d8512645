import math

import pytest
import torch

from bcl_dali.methods.ntxent import nt_xent_per_sample


def naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    """Loops over anchors, as the paper writes the loss: -log(e^{s(a,p)/t} / sum_{j != a} e^{s(a,j)/t})."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n, b = len(z), len(z1)
    per_anchor = []
    for a in range(n):
        positive = (a + b) % n
        denominator = sum(math.exp(float(z[a] @ z[j]) / t) for j in range(n) if j != a)
        per_anchor.append(-math.log(math.exp(float(z[a] @ z[positive]) / t) / denominator))
    return torch.tensor([(per_anchor[i] + per_anchor[i + b]) / 2 for i in range(b)], dtype=torch.float64)


@pytest.mark.parametrize("batch,dim,t", [(2, 3, 0.2), (7, 16, 0.2), (16, 8, 0.5)])
def test_equals_naive_loops(batch, dim, t):
    g = torch.Generator().manual_seed(batch)
    z1, z2 = torch.randn(batch, dim, generator=g), torch.randn(batch, dim, generator=g)
    ours = nt_xent_per_sample(z1, z2, t)
    assert ours.shape == (batch,) and ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), naive_nt_xent(z1, z2, t), rtol=1e-5, atol=1e-5)


def test_matches_reference_formulation_with_masked_exp():
    """The reference's nt_xent: exp of all similarities, self and positive masked out of the negatives."""
    g = torch.Generator().manual_seed(0)
    b = 5
    z1, z2 = torch.randn(b, 4, generator=g), torch.randn(b, 4, generator=g)
    out = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=-1)
    neg = torch.exp(out @ out.T / 0.2)
    mask = torch.ones(2 * b, 2 * b, dtype=torch.bool)
    for i in range(2 * b):
        mask[i, i] = False
        mask[i, (i + b) % (2 * b)] = False
    ng = neg.masked_select(mask).view(2 * b, -1).sum(-1)
    pos = torch.exp((out[:b] * out[b:]).sum(-1) / 0.2).repeat(2)
    reference = (-torch.log(pos / (pos + ng))).view(2, b).mean(0)
    torch.testing.assert_close(nt_xent_per_sample(z1, z2, 0.2), reference, rtol=1e-5, atol=1e-5)


def test_finite_at_low_temperature_with_large_logits():
    z = torch.full((8, 4), 1e4, dtype=torch.float16)
    for t in (0.05, 0.005):
        loss = nt_xent_per_sample(z, z.clone(), t)
        assert torch.isfinite(loss).all()
        # all projections identical: every one of the 2B - 1 candidates is equally likely
        torch.testing.assert_close(loss, torch.full((8,), math.log(15.0)), rtol=1e-4, atol=1e-4)


def test_gradients_flow_in_fp32_from_half_inputs():
    z1 = torch.randn(6, 8, dtype=torch.bfloat16, requires_grad=True)
    z2 = torch.randn(6, 8, dtype=torch.bfloat16, requires_grad=True)
    loss = nt_xent_per_sample(z1, z2, 0.2)
    assert loss.dtype == torch.float32
    loss.mean().backward()
    assert torch.isfinite(z1.grad.float()).all() and z1.grad.abs().sum() > 0


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        nt_xent_per_sample(torch.zeros(4, 3), torch.zeros(5, 3), 0.2)
