"""InfoNCE (U-MARVEL eq. 2) against explicit float64 sums, and the learnable temperature."""
import math

import pytest
import torch
import torch.nn.functional as F

from uniembed.train.losses import info_nce
from uniembed.train.temperature import Temperature


def loop_info_nce(queries, candidates, tau, positive_index=None, bidirectional=False, exclude=None):
    """Eq. 2 by explicit sums of exps over Python floats (float64); ``exclude[i][j]`` skips a term."""
    q, c = queries.double().tolist(), candidates.double().tolist()
    pos = list(range(len(q))) if positive_index is None else [int(p) for p in positive_index]

    def sim(a, b):
        return sum(x * y for x, y in zip(a, b))

    forward = 0.0
    for i, query in enumerate(q):
        denominator = sum(math.exp(sim(query, cand) / tau) for j, cand in enumerate(c)
                          if exclude is None or not exclude[i][j])
        forward += -math.log(math.exp(sim(query, c[pos[i]]) / tau) / denominator)
    forward /= len(q)
    if not bidirectional:
        return forward
    reverse = 0.0
    for i in range(len(q)):
        positive = c[pos[i]]
        denominator = sum(math.exp(sim(positive, query) / tau) for k, query in enumerate(q)
                          if exclude is None or not exclude[k][pos[i]])
        reverse += -math.log(math.exp(sim(positive, q[i]) / tau) / denominator)
    return (forward + reverse / len(q)) / 2


def unit(*shape, seed):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("extra_negatives", [0, 7])
def test_info_nce_matches_explicit_sums(bidirectional, extra_negatives):
    q, c = unit(5, 8, seed=0), unit(5 + extra_negatives, 8, seed=1)
    for tau in (0.05, 0.0206, 1.0):
        got = info_nce(q, c, tau, bidirectional=bidirectional)
        assert got.shape == ()
        assert got.item() == pytest.approx(loop_info_nce(q, c, tau, bidirectional=bidirectional), rel=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_info_nce_custom_positive_index(bidirectional):
    q, c = unit(4, 6, seed=2), unit(10, 6, seed=3)
    positive_index = torch.tensor([7, 0, 9, 3])
    got = info_nce(q, c, torch.tensor(0.05, dtype=torch.float64), positive_index=positive_index,
                   bidirectional=bidirectional)
    want = loop_info_nce(q, c, 0.05, positive_index, bidirectional)
    assert got.item() == pytest.approx(want, rel=1e-12)
    # moving the positives to rows 0..B-1 gives the default layout and the same loss
    rest = [row for row in range(10) if row not in positive_index.tolist()]
    reordered = c[torch.cat([positive_index, torch.tensor(rest)])]
    assert info_nce(q, reordered, 0.05, bidirectional=bidirectional).item() == pytest.approx(want, rel=1e-12)


def test_info_nce_float32_close_to_float64():
    q, c = unit(6, 16, seed=4), unit(18, 16, seed=5)
    got = info_nce(q.float(), c.float(), 0.02, bidirectional=True)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(loop_info_nce(q, c, 0.02, bidirectional=True), rel=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_info_nce_gradcheck(bidirectional):
    q = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    c = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    positive_index = torch.tensor([2, 0, 4])
    assert torch.autograd.gradcheck(
        lambda q, c, t: info_nce(q, c, t, positive_index=positive_index, bidirectional=bidirectional), (q, c, tau))


def test_info_nce_rejects_bad_inputs():
    q, c = unit(4, 6, seed=6), unit(6, 6, seed=7)
    with pytest.raises(ValueError, match=r"\[N, d\] candidates"):
        info_nce(q, c[:, :5], 0.05)
    with pytest.raises(ValueError, match="positives"):
        info_nce(q, c[:3], 0.05)
    with pytest.raises(ValueError, match="positive_index"):
        info_nce(q, c, 0.05, positive_index=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="distinct"):
        info_nce(q, c, 0.05, positive_index=torch.tensor([0, 1, 1, 2]), bidirectional=True)


def test_temperature_fixed_has_no_parameters():
    tau = Temperature(0.05, learnable=False)
    assert list(tau.parameters()) == []
    assert "tau" in tau.state_dict()
    assert tau.value == pytest.approx(0.05)
    assert not tau().requires_grad


def test_temperature_learnable_gradient_flows():
    tau = Temperature(0.05)
    assert [name for name, _ in tau.named_parameters()] == ["tau"]
    tau().backward()
    assert tau.tau.grad.item() == pytest.approx(1.0)  # tau itself is the parameter, clamp inactive
    tau.zero_grad()
    q, c = unit(4, 8, seed=8), unit(4, 8, seed=9)
    info_nce(q, c, tau()).backward()
    assert tau.tau.grad is not None and tau.tau.grad.item() != 0.0


def test_temperature_clamp_holds():
    tau = Temperature(0.05, minimum=0.01, maximum=0.5)
    with torch.no_grad():
        tau.tau.fill_(1e-4)
    assert tau.value == pytest.approx(0.01)
    tau().backward()
    assert tau.tau.grad.item() == 0.0
    with torch.no_grad():
        tau.tau.fill_(50.0)
    assert tau.value == pytest.approx(0.5)
    with pytest.raises(ValueError):
        Temperature(0.001, minimum=0.005)


@pytest.mark.parametrize("learnable", [True, False])
def test_temperature_state_dict_round_trip(learnable):
    tau = Temperature(0.05, learnable=learnable)
    with torch.no_grad():
        tau.tau.fill_(0.0206)  # U-MARVEL's learned value after stage 1c (Table 12)
    restored = Temperature(0.3, learnable=learnable)
    restored.load_state_dict(tau.state_dict())
    assert restored.value == pytest.approx(0.0206)
    assert "0.0206" in repr(restored)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_info_nce_exclude_drops_repeated_positives_from_denominators(bidirectional):
    # queries 0 and 2 share an item: its copies (rows 0 and 2) must not be each other's negative
    q, c = unit(4, 6, seed=5), unit(7, 6, seed=6)
    c[2] = c[0]
    exclude = torch.zeros(4, 7, dtype=torch.bool)
    exclude[0, 2] = exclude[2, 0] = True
    got = info_nce(q, c, 0.07, bidirectional=bidirectional, exclude=exclude)
    want = loop_info_nce(q, c, 0.07, bidirectional=bidirectional, exclude=exclude.tolist())
    assert abs(got.item() - want) < 1e-9
    assert abs(got.item() - loop_info_nce(q, c, 0.07, bidirectional=bidirectional)) > 1e-6
    with pytest.raises(ValueError, match="own positive"):
        info_nce(q, c, 0.07, exclude=torch.eye(4, 7, dtype=torch.bool))
