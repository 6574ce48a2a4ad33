"""Losses and diagnostics against reference implementations written here, closed forms and
properties (symmetry, scale invariance, gradients, mixed precision)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnjets.losses import (
    NTXentLoss,
    VICRegLoss,
    alignment,
    contrastive_diagnostics,
    covariance_loss,
    effective_rank,
    invariance_loss,
    positive_negative_cosine,
    stack_views,
    uniformity,
    variance_loss,
)


def random_views(n_jets: int, n_views: int, dim: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """(N, R, D) Gaussian embeddings."""
    return torch.randn(n_jets, n_views, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --------------------------------------------------------------------------------------------
# reference implementations: plain loops over python floats, straight from the formulas


def reference_ntxent(z, temperature: float, positive_in_denominator: bool) -> np.ndarray:
    """(N, R) per-anchor losses: mean over the positives p of -log(exp(s_ap) / sum_i exp(s_ai))."""
    z = np.asarray(z, dtype=np.float64)
    n_jets, n_views, _ = z.shape
    unit = z / np.linalg.norm(z, axis=-1, keepdims=True)
    losses = np.zeros((n_jets, n_views))
    for n in range(n_jets):
        for r in range(n_views):
            anchor = unit[n, r]
            terms = []
            for q in range(n_views):
                if q == r:
                    continue
                numerator = math.exp(float(anchor @ unit[n, q]) / temperature)
                denominator = 0.0
                for m in range(n_jets):
                    for s in range(n_views):
                        if (m, s) == (n, r):
                            continue
                        if m == n and not positive_in_denominator:
                            continue
                        denominator += math.exp(float(anchor @ unit[m, s]) / temperature)
                terms.append(-math.log(numerator / denominator))
            losses[n, r] = sum(terms) / len(terms)
    return losses


def simclr_cross_entropy(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """The usual two-view SimCLR implementation: cross entropy over the 2N - 1 others."""
    n = len(z_a)
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)  # (2N, D)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, targets)


def reference_vicreg_terms(z, target: float, eps: float) -> tuple[float, float, float]:
    """(invariance, variance, covariance) of the official two-view loss, averaged over view pairs.

    Per pair (r, q): invariance s(Z_r, Z_q), variance (v(Z_r) + v(Z_q)) / 2, covariance
    c(Z_r) + c(Z_q).
    """
    z = np.asarray(z, dtype=np.float64)
    n_jets, n_views, dim = z.shape
    pairs = list(itertools.combinations(range(n_views), 2))
    invariance = 0.0
    for r, q in pairs:
        invariance += sum((z[n, r, d] - z[n, q, d]) ** 2 for n in range(n_jets) for d in range(dim)) / (n_jets * dim)
    invariance /= len(pairs)
    variance_of, covariance_of = [], []
    for r in range(n_views):
        mean = [sum(z[n, r, d] for n in range(n_jets)) / n_jets for d in range(dim)]
        hinge = 0.0
        for d in range(dim):
            var = sum((z[n, r, d] - mean[d]) ** 2 for n in range(n_jets)) / (n_jets - 1)
            hinge += max(0.0, target - math.sqrt(var + eps))
        variance_of.append(hinge / dim)
        off = 0.0
        for d in range(dim):
            for e in range(dim):
                if d != e:
                    cov = sum((z[n, r, d] - mean[d]) * (z[n, r, e] - mean[e]) for n in range(n_jets)) / (n_jets - 1)
                    off += cov**2
        covariance_of.append(off / dim)
    variance = sum((variance_of[r] + variance_of[q]) / 2 for r, q in pairs) / len(pairs)
    covariance = sum(covariance_of[r] + covariance_of[q] for r, q in pairs) / len(pairs)
    return invariance, variance, covariance


def official_vicreg(x: torch.Tensor, y: torch.Tensor, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0):
    """The two-view loss of facebookresearch/vicreg (main_vicreg.py), transcribed."""
    n, dim = x.shape
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    off = ~torch.eye(dim, dtype=torch.bool)
    cov_x = (x.T @ x) / (n - 1)
    cov_y = (y.T @ y) / (n - 1)
    cov_loss = cov_x[off].pow(2).sum() / dim + cov_y[off].pow(2).sum() / dim
    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


# --------------------------------------------------------------------------------------------
# view conventions


def test_stack_views_accepts_tensor_views_and_list():
    z = random_views(5, 3, 4)
    views = [z[:, r] for r in range(3)]
    assert torch.equal(stack_views(z), z)
    assert torch.equal(stack_views(*views), z)
    assert torch.equal(stack_views(views), z)
    assert torch.equal(stack_views(tuple(views)), z)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((), ValueError, "no views"),
        ((torch.zeros(4, 3),), ValueError, "one view"),
        ((torch.zeros(4, 1, 3),), ValueError, "R = 1"),
        ((torch.zeros(4),), ValueError, r"shape \(N, R, D\)"),
        ((torch.zeros(4, 3), torch.zeros(5, 3)), ValueError, "same shape"),
        ((torch.zeros(4, 3), torch.zeros(4, 2, 3)), ValueError, r"\(N, D\)"),
        ((torch.zeros(4, 3), np.zeros((4, 3))), TypeError, "torch.Tensor"),
        ((torch.zeros(4, 3, dtype=torch.int64), torch.zeros(4, 3)), TypeError, "floating-point"),
    ],
)
def test_stack_views_errors_say_what_is_allowed(args, error, match):
    with pytest.raises(error, match=match):
        stack_views(*args)


def test_constructor_errors_and_repr():
    with pytest.raises(ValueError, match="'temperature' must be a positive"):
        NTXentLoss(temperature=0)
    with pytest.raises(ValueError, match="'reduction' must be one of 'mean', 'sum', 'none', not 'avg'"):
        NTXentLoss(reduction="avg")
    with pytest.raises(TypeError, match="'positive_in_denominator' must be a bool"):
        NTXentLoss(positive_in_denominator=1)
    with pytest.raises(ValueError, match="'variance_weight' must be a non-negative"):
        VICRegLoss(variance_weight=-1)
    with pytest.raises(ValueError, match="'eps' must be a positive"):
        VICRegLoss(eps=0)
    assert repr(NTXentLoss()) == "NTXentLoss(temperature=0.1, positive_in_denominator=True, reduction='mean')"
    assert repr(VICRegLoss()).startswith("VICRegLoss(invariance_weight=25.0, variance_weight=25.0, covariance_weight=1.0")


@pytest.mark.parametrize("loss_fn", [NTXentLoss(), VICRegLoss()])
def test_losses_need_two_jets(loss_fn):
    with pytest.raises(ValueError, match="at least 2 jets"):
        loss_fn(torch.randn(1, 2, 4))


# --------------------------------------------------------------------------------------------
# NT-Xent


@pytest.mark.parametrize("positive_in_denominator", [True, False])
@pytest.mark.parametrize("n_views", [2, 3])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_ntxent_matches_reference(positive_in_denominator, n_views, temperature):
    z = random_views(6, n_views, 5, seed=n_views)
    loss_fn = NTXentLoss(temperature, positive_in_denominator, reduction="none")
    expected = reference_ntxent(z, temperature, positive_in_denominator)
    per_anchor = loss_fn(z)
    assert per_anchor.shape == (6, n_views)
    np.testing.assert_allclose(per_anchor.numpy(), expected, rtol=1e-10)
    mean = NTXentLoss(temperature, positive_in_denominator)(z)
    total = NTXentLoss(temperature, positive_in_denominator, reduction="sum")(z)
    assert mean.item() == pytest.approx(expected.mean(), rel=1e-10)
    assert total.item() == pytest.approx(expected.sum(), rel=1e-10)


@settings(deadline=None, max_examples=40)
@given(n_jets=st.integers(2, 5), n_views=st.integers(2, 4), dim=st.integers(1, 6), seed=st.integers(0, 2**16),
       temperature=st.floats(0.05, 2.0), positive_in_denominator=st.booleans())
def test_ntxent_matches_reference_property(n_jets, n_views, dim, seed, temperature, positive_in_denominator):
    z = random_views(n_jets, n_views, dim, seed)
    got = NTXentLoss(temperature, positive_in_denominator, reduction="none")(z)
    # atol: a loss near 0 (4.5e-7 for n_jets=3, dim=1, seed=1, T=0.125) differs from the reference by 1e-15
    np.testing.assert_allclose(got.numpy(), reference_ntxent(z, temperature, positive_in_denominator), rtol=1e-9,
                               atol=1e-12)


def test_ntxent_two_views_is_simclr_and_seed_formula():
    z_a, z_b = random_views(7, 2, 8, seed=3).unbind(dim=1)
    got = NTXentLoss(temperature=0.2)(z_a, z_b)
    torch.testing.assert_close(got, simclr_cross_entropy(z_a, z_b, 0.2))


def test_ntxent_list_and_tensor_calls_agree_in_float32():
    z = random_views(8, 3, 16, dtype=torch.float32)
    loss_fn = NTXentLoss()
    got = loss_fn(z)
    assert got.dtype == torch.float32
    torch.testing.assert_close(loss_fn(*z.unbind(1)), got)
    torch.testing.assert_close(loss_fn(list(z.unbind(1))), got)
    np.testing.assert_allclose(got.item(), reference_ntxent(z, 0.1, True).mean(), rtol=1e-5)


@pytest.mark.parametrize("positive_in_denominator", [True, False])
def test_ntxent_symmetric_under_view_and_jet_permutations(positive_in_denominator):
    loss_fn = NTXentLoss(0.1, positive_in_denominator)
    z_a, z_b = random_views(9, 2, 6, seed=1).unbind(dim=1)
    assert loss_fn(z_a, z_b).item() == pytest.approx(loss_fn(z_b, z_a).item(), rel=1e-12)
    z = random_views(5, 3, 6, seed=2)
    expected = loss_fn(z).item()
    for permutation in itertools.permutations(range(3)):
        assert loss_fn(z[:, list(permutation)]).item() == pytest.approx(expected, rel=1e-12)
    jets = torch.randperm(5, generator=torch.Generator().manual_seed(0))
    assert loss_fn(z[jets]).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("positive_in_denominator", [True, False])
@pytest.mark.parametrize("n_views", [2, 3])
def test_ntxent_perfect_alignment_closed_form(positive_in_denominator, n_views):
    # every view of jet n is (a positive multiple of) the basis vector e_n: s_ap = 1/tau for the
    # R - 1 positives, s_ai = 0 for the (N - 1) R negatives
    n_jets, dim, temperature = 4, 6, 0.1
    scales = torch.rand(n_jets, n_views, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    z = torch.eye(dim, dtype=torch.float64)[:n_jets, None, :] * scales  # (N, R, D)
    negatives = (n_jets - 1) * n_views
    if positive_in_denominator:
        expected = -1 / temperature + math.log((n_views - 1) * math.exp(1 / temperature) + negatives)
    else:
        expected = -1 / temperature + math.log(negatives)
    got = NTXentLoss(temperature, positive_in_denominator, reduction="none")(z)
    torch.testing.assert_close(got, torch.full((n_jets, n_views), expected, dtype=torch.float64))


@pytest.mark.parametrize("positive_in_denominator", [True, False])
def test_ntxent_collapse_closed_form(positive_in_denominator):
    n_jets, n_views = 5, 3
    z = torch.ones(n_jets, n_views, 4, dtype=torch.float64)
    expected = math.log(n_jets * n_views - 1) if positive_in_denominator else math.log((n_jets - 1) * n_views)
    assert NTXentLoss(0.07, positive_in_denominator)(z).item() == pytest.approx(expected, rel=1e-12)


@settings(deadline=None, max_examples=25)
@given(scale=st.floats(1e-3, 1e3), seed=st.integers(0, 2**16), positive_in_denominator=st.booleans())
def test_ntxent_invariant_to_scaling(scale, seed, positive_in_denominator):
    z = random_views(6, 3, 5, seed)
    loss_fn = NTXentLoss(0.1, positive_in_denominator)
    assert loss_fn(z * scale).item() == pytest.approx(loss_fn(z).item(), rel=1e-9)


@settings(deadline=None, max_examples=25)
@given(n_jets=st.integers(2, 6), n_views=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_ntxent_lower_bound_with_positive_in_denominator(n_jets, n_views, seed):
    # log-sum-exp over the others >= log-sum-exp over the positives >= log(R - 1) + their mean
    per_anchor = NTXentLoss(0.05, reduction="none")(random_views(n_jets, n_views, 3, seed))
    assert bool((per_anchor >= math.log(n_views - 1) - 1e-12).all())


@pytest.mark.parametrize("loss_fn", [NTXentLoss(), NTXentLoss(positive_in_denominator=False), VICRegLoss()])
def test_gradients_flow_to_every_view(loss_fn):
    views = [v.clone().requires_grad_(True) for v in random_views(6, 3, 8, seed=4).unbind(1)]
    loss_fn(*views).backward()
    for view in views:
        assert torch.isfinite(view.grad).all()
        assert view.grad.abs().sum() > 0


def test_ntxent_gradcheck():
    z = random_views(4, 3, 3, seed=5).requires_grad_(True)
    assert torch.autograd.gradcheck(NTXentLoss(0.3), (z,))
    assert torch.autograd.gradcheck(NTXentLoss(0.3, positive_in_denominator=False), (z,))


@pytest.mark.parametrize("positive_in_denominator", [True, False])
def test_ntxent_decreases_when_positives_are_pulled_together(positive_in_denominator):
    loss_fn = NTXentLoss(0.1, positive_in_denominator)
    z_a, z_b = random_views(8, 2, 64, seed=6).unbind(1)
    z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    losses = [loss_fn(z_a, (1 - t) * z_b + t * z_a).item() for t in np.linspace(0, 1, 6)]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))


def test_ntxent_is_stable_at_small_temperature():
    z = random_views(6, 2, 4, seed=7, dtype=torch.float32)
    z[:, 1] = z[:, 0]  # cosine 1 for every positive: logits of 1e4 at tau = 1e-4
    got = NTXentLoss(temperature=1e-4)(z)
    assert torch.isfinite(got)
    assert got.item() == pytest.approx(0.0, abs=1e-4)  # the positive's term dominates the denominator
    decoupled = NTXentLoss(temperature=1e-4, positive_in_denominator=False, reduction="none")(z)
    assert torch.isfinite(decoupled).all()
    assert bool((decoupled < -1e3).all())  # about (max negative cosine - 1) / tau


def test_ntxent_computes_in_float32_under_bf16_autocast():
    model = torch.nn.Linear(6, 16)
    x_a, x_b = torch.randn(2, 10, 6, generator=torch.Generator().manual_seed(8))
    loss_fn = NTXentLoss()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z_a, z_b = model(x_a), model(x_b)
        assert z_a.dtype == torch.bfloat16
        loss = loss_fn(z_a, z_b)
    assert loss.dtype == torch.float32
    expected = loss_fn(z_a.float(), z_b.float())  # the same bf16-rounded inputs, without autocast
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert torch.isfinite(model.weight.grad).all()


# --------------------------------------------------------------------------------------------
# VICReg


@pytest.mark.parametrize("n_views", [2, 3])
def test_vicreg_matches_reference(n_views):
    z = random_views(7, n_views, 4, seed=10) * 0.7  # std below the target: the hinge is active
    loss_fn = VICRegLoss(invariance_weight=2.0, variance_weight=3.0, covariance_weight=5.0, variance_target=1.0)
    invariance, variance, covariance = reference_vicreg_terms(z, target=1.0, eps=1e-4)
    terms = loss_fn.terms(z)
    assert terms["invariance"].item() == pytest.approx(invariance, rel=1e-10)
    assert terms["variance"].item() == pytest.approx(variance, rel=1e-10)
    assert terms["covariance"].item() == pytest.approx(covariance, rel=1e-10)
    assert variance > 0
    assert loss_fn(z).item() == pytest.approx(2 * invariance + 3 * variance + 5 * covariance, rel=1e-10)


@settings(deadline=None, max_examples=25)
@given(n_jets=st.integers(2, 6), n_views=st.integers(2, 4), dim=st.integers(1, 5), seed=st.integers(0, 2**16),
       scale=st.floats(0.1, 3.0), target=st.floats(0.5, 2.0))
def test_vicreg_matches_reference_property(n_jets, n_views, dim, seed, scale, target):
    z = random_views(n_jets, n_views, dim, seed) * scale
    got = VICRegLoss(variance_target=target).terms(z)
    for name, expected in zip(("invariance", "variance", "covariance"), reference_vicreg_terms(z, target, 1e-4)):
        assert got[name].item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_vicreg_two_views_is_the_official_loss():
    z_a, z_b = random_views(16, 2, 8, seed=11).unbind(1)
    ours = VICRegLoss()(z_a, z_b)
    torch.testing.assert_close(ours, official_vicreg(z_a, z_b, cov_coeff=1.0))


def test_vicreg_symmetric_under_swapping_views():
    loss_fn = VICRegLoss()
    z_a, z_b = random_views(10, 2, 6, seed=12).unbind(1)
    assert loss_fn(z_a, z_b).item() == pytest.approx(loss_fn(z_b, z_a).item(), rel=1e-12)
    z = random_views(10, 3, 6, seed=13)
    assert loss_fn(z[:, [2, 0, 1]]).item() == pytest.approx(loss_fn(z).item(), rel=1e-12)


def test_vicreg_terms_closed_forms():
    x = random_views(12, 1, 5, seed=14)[:, 0]
    assert invariance_loss(x, x).item() == 0.0
    assert invariance_loss(x, x + 0.5).item() == pytest.approx(0.25)
    # every feature's std at or above the target: no variance penalty
    assert variance_loss(2.0 * x / x.std(dim=0), target=1.0).item() == 0.0
    assert variance_loss(x / x.std(dim=0), target=1.0, eps=0.0).item() == pytest.approx(0.0, abs=1e-12)
    # a collapsed batch pays target - sqrt(eps) on every feature
    assert variance_loss(torch.ones(8, 3), target=1.0, eps=1e-4).item() == pytest.approx(0.99)
    # a centred orthogonal design: decorrelated features, whatever their scales and offsets
    design = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
    assert covariance_loss(design * torch.tensor([3.0, 0.5, 2.0]) + 7.0).item() == pytest.approx(0.0, abs=1e-12)
    # two identical unit-variance features: C_01 = C_10 = 1, divided by D = 2
    column = torch.tensor([1.0, -1.0, 1.0, -1.0])
    assert covariance_loss(torch.stack([column, column], dim=1) / column.std()).item() == pytest.approx(1.0)


def test_vicreg_computes_in_float32_under_bf16_autocast():
    model = torch.nn.Linear(6, 16)
    x_a, x_b = torch.randn(2, 10, 6, generator=torch.Generator().manual_seed(15))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = VICRegLoss()(model(x_a), model(x_b))
    assert loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(model.weight.grad).all()


# --------------------------------------------------------------------------------------------
# diagnostics


def test_alignment_known_values():
    e = torch.eye(3)
    assert alignment(e, 5 * e).item() == pytest.approx(0.0)  # normalised: same direction
    assert alignment(e, e[[1, 2, 0]]).item() == pytest.approx(2.0)  # orthogonal: |e_i - e_j|^2 = 2
    assert alignment(e, -e).item() == pytest.approx(4.0)
    assert alignment(e, -e, alpha=1).item() == pytest.approx(2.0)


def test_uniformity_known_values():
    assert uniformity(torch.ones(5, 3)).item() == pytest.approx(0.0, abs=1e-6)  # collapse
    assert uniformity(torch.eye(4), t=2).item() == pytest.approx(-4.0)  # all pairs at distance^2 = 2
    assert uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), t=1).item() == pytest.approx(-4.0)  # antipodal
    mixed = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # pairs at distance^2 0, 2, 2
    assert uniformity(mixed, t=2).item() == pytest.approx(math.log((1 + 2 * math.exp(-4)) / 3))


def test_uniformity_matches_wang_isola_implementation():
    z = random_views(20, 1, 5, seed=16)[:, 0]
    expected = torch.pdist(F.normalize(z, dim=1), p=2).pow(2).mul(-2).exp().mean().log()
    torch.testing.assert_close(uniformity(z), expected)


@settings(deadline=None, max_examples=25)
@given(n_jets=st.integers(2, 8), dim=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_alignment_and_uniformity_ranges(n_jets, dim, seed):
    z_a, z_b = random_views(n_jets, 2, dim, seed).unbind(1)
    assert -1e-12 <= alignment(z_a, z_b).item() <= 4 + 1e-12
    assert -8 - 1e-12 <= uniformity(z_a).item() <= 1e-12


def test_positive_negative_cosine():
    e = torch.eye(4)
    z = torch.stack([e[:3], e[:3]], dim=1)  # each jet its own axis, both views identical
    positive, negative = positive_negative_cosine(z)
    assert positive.item() == pytest.approx(1.0)
    assert negative.item() == pytest.approx(0.0)
    # three views, the third flipped: positive pairs (0,1)=1, (0,2)=-1, (1,2)=-1; negatives still 0
    positive, negative = positive_negative_cosine(e[:3], 2 * e[:3], -e[:3])
    assert positive.item() == pytest.approx(-1 / 3)
    assert negative.item() == pytest.approx(0.0)


def test_effective_rank_closed_forms():
    g = torch.Generator().manual_seed(17)
    rank_one = torch.randn(50, 1, generator=g) @ torch.randn(1, 8, generator=g)
    assert effective_rank(rank_one).item() == pytest.approx(1.0, abs=1e-6)
    gaussian = torch.randn(20000, 16, generator=g)
    assert 15.5 < effective_rank(gaussian).item() <= 16.0
    # equal singular values on k directions: exactly k
    design = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
    assert effective_rank(design).item() == pytest.approx(3.0)
    assert effective_rank(torch.ones(6, 4)).item() == 0.0  # every row equal: nothing left after centring
    # (N, R, D) is flattened into rows
    assert effective_rank(design.reshape(2, 2, 3)).item() == pytest.approx(3.0)


@settings(deadline=None, max_examples=25)
@given(n_rows=st.integers(2, 12), dim=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_effective_rank_between_one_and_rank(n_rows, dim, seed):
    h = random_views(n_rows, 1, dim, seed)[:, 0]
    value = effective_rank(h).item()
    assert 1 - 1e-9 <= value <= min(n_rows - 1, dim) + 1e-9  # centring removes one row's worth


def test_contrastive_diagnostics_returns_floats_without_graph():
    h = random_views(10, 2, 12, seed=18, dtype=torch.float32).requires_grad_(True)
    z = random_views(10, 2, 6, seed=19, dtype=torch.float32).requires_grad_(True)
    out = contrastive_diagnostics(h, z)
    assert set(out) == {"alignment", "uniformity", "pos_cosine", "neg_cosine", "effective_rank_h", "effective_rank_z"}
    assert all(isinstance(value, float) and math.isfinite(value) for value in out.values())
    assert out["alignment"] == pytest.approx(alignment(z[:, 0], z[:, 1]).item())
    assert out["uniformity"] == pytest.approx((uniformity(z[:, 0]).item() + uniformity(z[:, 1]).item()) / 2)
    assert out["effective_rank_z"] == pytest.approx(effective_rank(z.reshape(20, 6)).item())
    # alignment of two views is 2 - 2 cos, averaged: consistent with the positive cosine
    assert out["alignment"] == pytest.approx(2 - 2 * out["pos_cosine"], rel=1e-5)
    # lists of views work as well, for both arguments
    assert contrastive_diagnostics(list(h.unbind(1)), list(z.unbind(1))) == pytest.approx(out)


def test_diagnostics_detect_collapse():
    g = torch.Generator().manual_seed(20)
    direction = torch.randn(1, 1, 8, generator=g)
    collapsed = direction * (1 + 0.01 * torch.rand(30, 2, 1, generator=g))  # (N, R, D) all on one ray
    out = contrastive_diagnostics(collapsed, collapsed)
    assert out["effective_rank_z"] == pytest.approx(1.0, abs=1e-3)  # float32 rounding leaves a tail
    assert out["neg_cosine"] == pytest.approx(1.0)
    assert out["uniformity"] == pytest.approx(0.0, abs=1e-5)
