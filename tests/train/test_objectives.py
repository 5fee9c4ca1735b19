"""Training objectives against direct computations (UniME-V2 eq. 2-4; U-MARVEL eq. 2), under
gradient caching and across two gloo processes."""
import math
from datetime import timedelta

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from uniembed.train.gradcache import gradcache_step
from uniembed.train.objectives import ObjectiveBatch, make_objective
from uniembed.train.objectives.soft_label import soft_label_diagnostics, symmetric_kl

from .test_gradcache import destroy_after_ddp, make_items, make_setup, max_diff


def _explicit_symmetric_kl(sim, scores, tau):
    """1/2 (KL(P||Q) + KL(Q||P)) by explicit sums over each query's candidates, float64, batch mean."""
    total = 0.0
    for row_s, row_j in zip(sim.tolist(), scores.tolist()):
        zp = sum(math.exp(x / tau) for x in row_s)
        zq = sum(math.exp(x / tau) for x in row_j)
        p = [math.exp(x / tau) / zp for x in row_s]
        q = [math.exp(x / tau) / zq for x in row_j]
        total += 0.5 * sum(pi * math.log(pi / qi) + qi * math.log(qi / pi) for pi, qi in zip(p, q))
    return total / len(sim)


@pytest.mark.parametrize("batch, k, tau", [(1, 1, 0.02), (3, 8, 0.02), (5, 4, 0.05), (2, 10, 0.5)])
def test_symmetric_kl_equals_explicit_sums(batch, k, tau):
    g = torch.Generator().manual_seed(batch * 100 + k)
    sim = torch.rand(batch, 1 + k, generator=g, dtype=torch.float64) * 2 - 1
    scores = torch.rand(batch, 1 + k, generator=g, dtype=torch.float64)
    got = symmetric_kl(sim / tau, scores / tau).item()
    assert got == pytest.approx(_explicit_symmetric_kl(sim, scores, tau), rel=1e-10, abs=1e-12)
    assert symmetric_kl(scores / tau, sim / tau).item() == pytest.approx(got, rel=1e-12)       # symmetric
    assert symmetric_kl(sim / tau, sim / tau).item() == pytest.approx(0.0, abs=1e-12)          # P = Q gives 0


def test_symmetric_kl_gradcheck():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(symmetric_kl, (a, b))


def test_soft_label_diagnostics_are_the_two_kl_directions_and_the_positives_mass():
    """The logged halves of eq. 4 against explicit sums: their mean is the loss; P(c+) and Q(c+) are column 0."""
    g = torch.Generator().manual_seed(7)
    sim, scores, tau = torch.rand(4, 9, generator=g, dtype=torch.float64), torch.rand(4, 9, generator=g, dtype=torch.float64), 0.02
    parts = soft_label_diagnostics(sim / tau, scores / tau)
    p, q = (sim / tau).softmax(-1), (scores / tau).softmax(-1)
    p_q = sum(float((p[i] * (p[i] / q[i]).log()).sum()) for i in range(4)) / 4
    q_p = sum(float((q[i] * (q[i] / p[i]).log()).sum()) for i in range(4)) / 4
    assert parts["kl_p_q"].item() == pytest.approx(p_q, rel=1e-10) and parts["kl_q_p"].item() == pytest.approx(q_p, rel=1e-10)
    assert 0.5 * (p_q + q_p) == pytest.approx(_explicit_symmetric_kl(sim, scores, tau), rel=1e-10)
    assert parts["p_positive"].item() == pytest.approx(float(p[:, 0].mean()), rel=1e-12)
    assert parts["q_positive"].item() == pytest.approx(float(q[:, 0].mean()), rel=1e-12)
    masked = soft_label_diagnostics(sim / tau, scores / tau, torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64))
    assert masked["p_positive"].item() == pytest.approx(float(p[[0, 3], 0].mean()), rel=1e-12)


def _unit(n, d, seed):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


def test_soft_label_objective_uses_each_querys_positive_and_its_own_negatives():
    b, k, tau = 3, 4, 0.02
    q, c = _unit(b, 6, 1), _unit(b + b * k, 6, 2)
    scores = np.random.default_rng(0).random((b, 1 + k))
    objective = make_objective({"name": "soft_label", "num_negatives": k, "temperature": tau}).double()
    loss = objective.loss(q, c, ObjectiveBatch(b, k, np.zeros((b, b + b * k), bool), scores))[0]
    sim = torch.stack([torch.stack([q[i] @ c[i]] + [q[i] @ c[b + i * k + j] for j in range(k)]) for i in range(b)])
    tau = objective.temperature.value  # 0.02 as stored (float32), the value the loss divides by
    assert loss.item() == pytest.approx(_explicit_symmetric_kl(sim, torch.as_tensor(scores), tau), rel=1e-10)
    with pytest.raises(ValueError, match="judge scores of shape"):
        objective.loss(q, c, ObjectiveBatch(b, k, np.zeros((b, b + b * k), bool), None))


def test_soft_label_label_temperature_gives_the_judges_distribution_its_own_tau():
    b, k = 3, 4
    q, c = _unit(b, 6, 5), _unit(b + b * k, 6, 6)
    scores = np.random.default_rng(1).random((b, 1 + k))
    objective = make_objective({"name": "soft_label", "num_negatives": k, "label_temperature": 0.2}).double()
    view = ObjectiveBatch(b, k, np.zeros((b, b + b * k), bool), scores)
    loss, parts = objective.loss(q, c, view)
    sim = torch.stack([torch.stack([q[i] @ c[i]] + [q[i] @ c[b + i * k + j] for j in range(k)]) for i in range(b)])
    tau = objective.temperature.value
    assert loss.item() == pytest.approx(symmetric_kl(sim / tau, torch.as_tensor(scores) / 0.2).item(), rel=1e-10)
    assert parts["q_positive"].item() == pytest.approx(float((torch.as_tensor(scores) / 0.2).softmax(-1)[:, 0].mean()))
    same = make_objective({"name": "soft_label", "num_negatives": k}).double().loss(q, c, view)[0]
    assert same.item() == pytest.approx(_explicit_symmetric_kl(sim, torch.as_tensor(scores), tau), rel=1e-10)


def test_soft_label_with_info_nce_adds_the_weighted_contrastive_term():
    b, k = 2, 2
    q, c = _unit(b, 4, 3), _unit(b + b * k, 4, 4)
    view = ObjectiveBatch(b, k, np.zeros((b, b + b * k), bool), np.full((b, 1 + k), 0.5))
    plain = make_objective({"name": "soft_label", "num_negatives": k}).double()
    mixed = make_objective({"name": "soft_label", "num_negatives": k, "info_nce_weight": 0.5}).double()
    kl = plain.loss(q, c, view)[0]
    total, parts = mixed.loss(q, c, view)
    logits = q @ c.T / mixed.temperature.value
    assert total.item() == pytest.approx(kl.item() + 0.5 * F.cross_entropy(logits, torch.arange(b)).item(), rel=1e-10)
    assert set(parts) == {"soft_label_kl", "info_nce", "kl_p_q", "kl_q_p", "p_positive", "q_positive"}


# The GradCache and two-process checks run the soft-label objective through its forward (gather included).
B, K, CHUNK = 4, 3, 3
QUERIES, CANDIDATES = make_items(B, 21), make_items(B + B * K, 22)
SCORES = np.random.default_rng(1).random((B, 1 + K))


def grads(model, _tau=None):
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def _objective():
    return make_objective({"name": "soft_label", "num_negatives": K, "temperature": 0.05}).double()


def _view():
    return ObjectiveBatch(B, K, np.zeros((B, B + B * K), bool), SCORES)


def test_gradient_caching_equals_direct_with_the_soft_label_loss():
    model, tau = make_setup()
    objective = _objective()
    objective(model(QUERIES), model(CANDIDATES), _view(), 1).backward()
    want = grads(model, tau)
    model.zero_grad()
    gradcache_step(model, QUERIES, CANDIDATES, lambda q, c: objective(q, c, _view(), 1), CHUNK)
    assert max_diff(grads(model, tau), want) < 1e-10


def _worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=60))
    b = B // 2
    queries = QUERIES[rank * b:(rank + 1) * b]
    candidates = CANDIDATES[rank * b:(rank + 1) * b] + CANDIDATES[B + rank * b * K:B + (rank + 1) * b * K]
    model, tau = make_setup()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    objective = _objective()
    loss = gradcache_step(ddp, queries, candidates, lambda q, c: objective(q, c, _view(), 2), CHUNK, no_sync=ddp.no_sync)
    torch.save({"loss": loss, "grads": grads(model, tau)}, f"{out_dir}/rank{rank}.pt")
    del ddp  # before the group goes: see destroy_after_ddp
    destroy_after_ddp()


def test_two_gloo_processes_give_the_one_process_gradient(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    model, tau = make_setup()
    loss = _objective()(model(QUERIES), model(CANDIDATES), _view(), 1)
    loss.backward()
    want = grads(model, tau)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert abs(got["loss"].item() - loss.item()) < 1e-12
        assert max_diff(got["grads"], want) < 1e-10


def test_unknown_objective_and_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="objective.name must be one of"):
        make_objective({"name": "triplet"})
    with pytest.raises(ValueError, match="objective 'soft_label'.*tau"):
        make_objective({"name": "soft_label", "tau": 0.02})


def test_the_light_settings_registry_is_the_objectives_own():
    """The workflow checks objective sections against uniembed.train.objective_settings (no torch): each objective's
    settings class and task there are the ones its module trains with."""
    from uniembed.train.objective_settings import OBJECTIVE_SETTINGS, OBJECTIVE_TASKS
    from uniembed.train.objectives import OBJECTIVES

    assert set(OBJECTIVE_SETTINGS) == set(OBJECTIVE_TASKS) == set(OBJECTIVES)
    for name, (objective_class, settings_class) in OBJECTIVES.items():
        assert OBJECTIVE_SETTINGS[name] is settings_class
        assert OBJECTIVE_TASKS[name] == getattr(objective_class, "task", "embedding"), name
