"""U-MARVEL's distillation objective (§3.3 L_distill) against explicit float64 sums."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from uniembed.train.objectives import ObjectiveBatch, make_objective
from uniembed.train.objectives.distill import teacher_student_kl


def _explicit(fused, sim, tau, scale):
    """sum_i T(i) log(T(i) / S(i)), T = softmax(scale * fused / tau), S = softmax(sim / tau), batch mean."""
    total = 0.0
    for row_f, row_s in zip(fused, sim):
        zt = sum(math.exp(scale * x / tau) for x in row_f)
        zs = sum(math.exp(x / tau) for x in row_s)
        t = [math.exp(scale * x / tau) / zt for x in row_f]
        s = [math.exp(x / tau) / zs for x in row_s]
        total += sum(ti * math.log(ti / si) for ti, si in zip(t, s))
    return total / len(fused)


def _unit(n, d, seed):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


@pytest.mark.parametrize("b, k, tau, scale", [(1, 1, 0.05, 0.5), (3, 4, 0.02, 0.5), (4, 9, 0.1, 1.0), (2, 49, 0.0206, 0.5)])
def test_distill_loss_equals_explicit_sums_over_each_querys_candidates(b, k, tau, scale):
    q, c = _unit(b, 8, b + k), _unit(b + b * k, 8, 100 + k)
    fused = np.random.default_rng(k).random((b, 1 + k)) * 2
    objective = make_objective({"name": "distill", "num_negatives": k, "temperature": tau,
                                "teacher_scale": scale}).double()
    loss = objective.loss(q, c, ObjectiveBatch(b, k, np.zeros((b, b + b * k), bool), fused))[0]
    sim = [[float(q[i] @ c[i])] + [float(q[i] @ c[b + i * k + j]) for j in range(k)] for i in range(b)]
    assert loss.item() == pytest.approx(_explicit(fused.tolist(), sim, tau, scale), rel=1e-6, abs=1e-12)


def test_kl_direction_is_teacher_to_student_and_zero_when_equal():
    g = torch.Generator().manual_seed(0)
    t, s = torch.randn(3, 6, generator=g, dtype=torch.float64), torch.randn(3, 6, generator=g, dtype=torch.float64)
    assert teacher_student_kl(t, t).item() == pytest.approx(0.0, abs=1e-12)
    forward, backward = teacher_student_kl(t, s).item(), teacher_student_kl(s, t).item()
    assert forward > 0 and abs(forward - backward) > 1e-3   # not symmetric: the direction matters
    assert torch.autograd.gradcheck(teacher_student_kl, (t.requires_grad_(), s.requires_grad_()))


def test_the_teacher_does_not_train_the_temperature_through_its_side():
    """tau is detached on the teacher's side (released code): its gradient comes from the student only."""
    b, k, tau = 2, 3, 0.05
    q, c = _unit(b, 4, 1), _unit(b + b * k, 4, 2)
    fused = np.random.default_rng(1).random((b, 1 + k))
    objective = make_objective({"name": "distill", "num_negatives": k, "temperature": tau}).double()
    objective.loss(q, c, ObjectiveBatch(b, k, np.zeros((b, b + b * k), bool), fused))[0].backward()
    got = next(objective.temperature.parameters()).grad.item()
    t = torch.tensor(tau, dtype=torch.float64, requires_grad=True)
    sim = torch.stack([torch.cat([q[i:i + 1] @ c[i:i + 1].T, q[i:i + 1] @ c[b + i * k: b + (i + 1) * k].T], 1)[0]
                       for i in range(b)])
    teacher = torch.as_tensor(fused) / tau                             # a constant: no path to t
    teacher_student_kl(teacher, sim / t).backward()
    assert got == pytest.approx(t.grad.item(), rel=1e-6)


def test_distill_refuses_missing_teacher_scores_and_bad_settings():
    objective = make_objective({"name": "distill", "num_negatives": 2, "temperature": 0.05})
    with pytest.raises(ValueError, match=r"teacher scores of shape \(1, 3\)"):
        objective.loss(torch.zeros(1, 4), torch.zeros(3, 4), ObjectiveBatch(1, 2, np.zeros((1, 3), bool), None))
    with pytest.raises(ValueError, match="num_negatives >= 1"):
        make_objective({"name": "distill", "num_negatives": 0, "temperature": 0.05})
    with pytest.raises(ValueError, match="teacher_scale > 0"):
        make_objective({"name": "distill", "teacher_scale": 0.0, "temperature": 0.05})


def test_the_default_teacher_is_the_released_codes_for_the_released_weight():
    """U-MARVEL's released code stores cos + w * P(Yes) with w = 1 and takes (stored / 2) / tau: the teacher
    table (convex fusion at alpha = 1 / (1 + w) = 0.5) and the default objective must give those logits."""
    import pyarrow as pa

    from uniembed.mine.schemas import JUDGE_SCORES, MINED
    from uniembed.rerank.teacher import teacher_table

    b, k, tau = 3, 4, 0.0206
    q, c = _unit(b, 8, 7), _unit(b + b * k, 8, 8)
    rng = np.random.default_rng(3)
    cos = [[float(q[i] @ c[i])] + [float(q[i] @ c[b + i * k + j]) for j in range(k)] for i in range(b)]
    p_yes = rng.random((b, 1 + k)).tolist()
    mined = pa.Table.from_pylist([{"query_id": f"q{i}", "rank": j + 1, "candidate_id": f"c{i}_{j}",
                                   "similarity": cos[i][1 + j]} for i in range(b) for j in range(k)], schema=MINED)
    judged = pa.Table.from_pylist(
        [{"query_id": f"q{i}", "candidate_id": f"p{i}", "is_positive": True, "rank": None, "score": p_yes[i][0],
          "status": "ok", "error": None, "judge_model": "r", "prompt_hash": "h"} for i in range(b)]
        + [{"query_id": f"q{i}", "candidate_id": f"c{i}_{j}", "is_positive": False, "rank": j + 1,
            "score": p_yes[i][1 + j], "status": "ok", "error": None, "judge_model": "r", "prompt_hash": "h"}
           for i in range(b) for j in range(k)], schema=JUDGE_SCORES)
    table = teacher_table(mined, {(f"q{i}", f"p{i}"): cos[i][0] for i in range(b)}, judged, 0.5, k).to_pylist()
    order = [[int(cid.split("_")[1]) for cid in row["negative_ids"]] for row in table]
    fused = np.array([[row["positive_scores"][0]] + row["negative_scores"] for row in table])
    objective = make_objective({"name": "distill", "num_negatives": k, "temperature": tau}).double()
    # the student's candidates in the teacher table's (fused) order
    c_ordered = torch.cat([c[:b]] + [c[b + i * k + torch.tensor(order[i])] for i in range(b)])
    loss = objective.loss(q, c_ordered, ObjectiveBatch(b, k, np.zeros((b, b + b * k), bool), fused))[0]
    released = []   # (cos + 1.0 * P(Yes)) / 2 / tau, the released code's teacher logits, float64 by hand
    student = []
    for i in range(b):
        columns = [0] + [1 + j for j in order[i]]
        released.append([(cos[i][m] + 1.0 * p_yes[i][m]) / 2 / tau for m in columns])
        student.append([cos[i][m] for m in columns])
    assert loss.item() == pytest.approx(_explicit([[x * tau for x in r] for r in released], student, tau, 1.0), rel=1e-6)
