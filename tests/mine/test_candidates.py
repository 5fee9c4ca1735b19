"""Candidate mining (UniME-V2 eq. 1) against a brute-force reference."""
import numpy as np
import pytest

from uniembed.mine.candidates import mine_candidates


def brute_force(q, ids, positives, pool, pool_ids, top_k, delta):
    out = []
    for i, qid in enumerate(ids):
        sims = pool @ q[i]
        order = sorted(range(len(pool_ids)), key=lambda j: (-sims[j], j))
        picks = [j for j in order if pool_ids[j] not in positives[i] and (delta is None or sims[j] < delta)][:top_k]
        out += [(qid, r + 1, pool_ids[j]) for r, j in enumerate(picks)]
    return out


@pytest.mark.parametrize("delta", [None, 0.5, 0.0])
def test_matches_brute_force_with_positives_removed_and_threshold(delta):
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(300, 16)).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    q = (pool[:40] + 0.3 * rng.normal(size=(40, 16))).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    pool_ids = [f"c{j}" for j in range(300)]
    ids = [f"q{i}" for i in range(40)]
    positives = [{f"c{i}", f"c{i + 100}"} for i in range(40)]
    table = mine_candidates(q, ids, positives, pool, pool_ids, top_k=50, delta=delta)
    got = list(zip(table["query_id"].to_pylist(), table["rank"].to_pylist(), table["candidate_id"].to_pylist()))
    assert got == brute_force(q, ids, positives, pool, pool_ids, 50, delta)
    assert not any(c in positives[int(qid[1:])] for qid, _, c in got)
    if delta is not None:
        assert max(table["similarity"].to_pylist()) < delta
    else:
        assert table.num_rows == 40 * 50


def test_widening_finds_candidates_below_a_strict_threshold():
    # every query's 100 nearest items are above delta: the first fetch cannot satisfy top_k
    base = np.eye(4, dtype=np.float32)[0]
    near = np.tile(base, (100, 1))
    far = np.tile(np.eye(4, dtype=np.float32)[1], (20, 1))
    pool = np.vstack([near, far])
    table = mine_candidates(base[None], ["q"], [set()], pool, [f"c{j}" for j in range(120)], top_k=10, delta=0.5)
    assert table.num_rows == 10 and set(table["candidate_id"].to_pylist()) <= {f"c{j}" for j in range(100, 120)}


def test_bad_input():
    with pytest.raises(ValueError, match="pool is empty"):
        mine_candidates(np.ones((1, 2), np.float32), ["q"], [set()], np.zeros((0, 2), np.float32), [], top_k=5)
    with pytest.raises(ValueError, match="top_k must be"):
        mine_candidates(np.ones((1, 2), np.float32), ["q"], [set()], np.ones((3, 2), np.float32), ["a", "b", "c"], top_k=0)
