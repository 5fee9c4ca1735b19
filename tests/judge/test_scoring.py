"""Sharded, resumable judge scoring: kill and resume, failed rows retried, a rerun of a finished run scores again."""
import hashlib

import pyarrow.parquet as pq
import pytest

from uniembed.embed.embedder import EmbedItem
from uniembed.judge.pairs import JudgePair
from uniembed.judge.prompt import prompt_hash
from uniembed.judge.failures import JudgeFailureError
from uniembed.judge.scoring import JudgeResult, score_pairs, shard_pairs
from uniembed.mine.schemas import JUDGE_SCORES


class FakeJudge:
    """Deterministic scores from the ids; raises after ``crash_after`` calls; fails ``flaky`` pairs once."""

    def __init__(self, model_id="fake-judge", crash_after=None, flaky=(), settings=None):
        self.model_id, self.crash_after, self.flaky = model_id, crash_after, set(flaky)
        self.settings = settings or {"backend": "fake", "weights": "w0"}
        self.calls: list[list[tuple[str, str]]] = []

    def score(self, pairs):
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            raise ConnectionError("judge server crashed")
        self.calls.append([(p.query_id, p.candidate_id) for p in pairs])
        results = []
        for p in pairs:
            if (p.query_id, p.candidate_id) in self.flaky:
                self.flaky.discard((p.query_id, p.candidate_id))
                results.append(JudgeResult.failed("HTTP 503: engine restarting"))
                continue
            x = int(hashlib.sha256(f"{p.query_id}/{p.candidate_id}".encode()).hexdigest()[:8], 16) / 2**32
            results.append(JudgeResult.ok(x, x * 4 - 2, 2 - x * 4))
        return results

    @property
    def scored(self):
        return sum(len(call) for call in self.calls)


def run_dir(shards):
    """The one keyed run directory under ``shards``."""
    (found,) = [p for p in shards.iterdir() if p.is_dir()]
    return found


def make_pairs(n_queries=10, per_query=4):
    pairs = []
    for q in range(n_queries):
        query = EmbedItem(f"query {q}", None, "Find it.")
        pairs.append(JudgePair(f"q{q}", f"p{q}", True, None, query, EmbedItem(f"positive {q}")))
        pairs += [JudgePair(f"q{q}", f"c{q}-{r}", False, r, query, EmbedItem(f"candidate {q}-{r}"))
                  for r in range(1, per_query + 1)]
    return pairs


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    return score_pairs(make_pairs(), FakeJudge(), root / "judge_scores.parquet", root / "shards",
                       queries_per_shard=3, progress=False)


def test_shards_hold_whole_queries():
    pairs = make_pairs(n_queries=7, per_query=2)
    shards = shard_pairs(pairs, 3)
    assert [len({p.query_id for p in s}) for s in shards] == [3, 3, 1]
    assert [p for s in shards for p in s] == pairs
    with pytest.raises(ValueError, match="not contiguous"):
        shard_pairs(pairs[3:6] + pairs[:3] + pairs[6:9] + pairs[:1], 2)


def test_uninterrupted_run_writes_the_schema_in_pair_order(reference, tmp_path):
    assert reference.schema.equals(JUDGE_SCORES)
    rows = reference.to_pylist()
    assert [(r["query_id"], r["candidate_id"]) for r in rows] == [(p.query_id, p.candidate_id) for p in make_pairs()]
    assert all(r["status"] == "ok" and r["error"] is None and r["judge_model"] == "fake-judge" for r in rows)
    assert {r["prompt_hash"] for r in rows} == {prompt_hash()}
    assert [r["rank"] for r in rows[:5]] == [None, 1, 2, 3, 4] and rows[0]["is_positive"] and not rows[1]["is_positive"]


def test_a_killed_run_resumes_without_rescoring_finished_shards(reference, tmp_path):
    out, shards = tmp_path / "judge_scores.parquet", tmp_path / "shards"
    crashing = FakeJudge(crash_after=2)
    with pytest.raises(ConnectionError, match="crashed"):
        score_pairs(make_pairs(), crashing, out, shards, queries_per_shard=3, progress=False)
    assert sorted(p.name for p in run_dir(shards).glob("shard-*.parquet")) == ["shard-00000.parquet",
                                                                              "shard-00001.parquet"]
    assert not out.exists() and not list(run_dir(shards).glob(".*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    resumed = FakeJudge()
    table = score_pairs(make_pairs(), resumed, out, shards, queries_per_shard=3, progress=False)
    assert resumed.scored == 20 and [c[0][0] for c in resumed.calls] == ["q6", "q9"]  # shards 2 and 3 only
    assert table.equals(reference) and pq.read_table(out).equals(reference)


def test_a_rerun_of_a_finished_run_scores_again(reference, tmp_path):
    """``snakemake --forcerun judge`` deletes the output and reruns: every pair is scored again."""
    out, shards = tmp_path / "judge_scores.parquet", tmp_path / "shards"
    score_pairs(make_pairs(), FakeJudge(), out, shards, queries_per_shard=3, progress=False)
    first = run_dir(shards)
    assert (first / "FINISHED").is_file()
    out.unlink()
    again = FakeJudge()
    assert score_pairs(make_pairs(), again, out, shards, queries_per_shard=3, progress=False).equals(reference)
    assert again.scored == 50 and run_dir(shards) == first


def test_failed_rows_are_kept_explicit_and_retried_on_rerun(reference, tmp_path):
    out, shards = tmp_path / "judge_scores.parquet", tmp_path / "shards"
    flaky = [("q1", "c1-2"), ("q7", "p7"), ("q7", "c7-4")]
    first = score_pairs(make_pairs(), FakeJudge(flaky=flaky), tmp_path / "kept.parquet", tmp_path / "kept",
                        queries_per_shard=3, progress=False)  # no ceiling: finishes with explicit failed rows
    failed = [r for r in first.to_pylist() if r["status"] == "failed"]
    assert [(r["query_id"], r["candidate_id"]) for r in failed] == flaky
    assert all(r["score"] is None and r["yes_logit"] is None and "HTTP 503" in r["error"] for r in failed)
    with pytest.raises(JudgeFailureError, match=r"3 of 50 judge pairs failed .*HTTP 503: 3"):
        score_pairs(make_pairs(), FakeJudge(flaky=flaky), out, shards, queries_per_shard=3, progress=False,
                    max_failed_fraction=0.05)
    assert not out.exists() and len(list(run_dir(shards).glob("shard-*.parquet"))) == 4
    rerun = FakeJudge()
    table = score_pairs(make_pairs(), rerun, out, shards, queries_per_shard=3, progress=False,
                        max_failed_fraction=0.05)
    assert rerun.calls == [[("q1", "c1-2")], [("q7", "p7"), ("q7", "c7-4")]]
    assert table.equals(reference)


def test_a_different_run_starts_fresh_in_its_own_directory(reference, tmp_path):
    out, shards = tmp_path / "judge_scores.parquet", tmp_path / "shards"
    with pytest.raises(ConnectionError):
        score_pairs(make_pairs(), FakeJudge(crash_after=2), out, shards, queries_per_shard=3, progress=False)
    killed = run_dir(shards)
    changed = make_pairs()
    changed[2] = JudgePair("q0", "c0-2", False, 2, changed[2].query, EmbedItem("edited text"))
    variants = [dict(queries_per_shard=4), dict(backend=FakeJudge("other-judge")),
                dict(pairs=make_pairs(n_queries=11)), dict(pairs=changed)]
    for variant in variants:
        judge = variant.get("backend", FakeJudge())
        pairs = variant.get("pairs", make_pairs())
        score_pairs(pairs, judge, out, shards, queries_per_shard=variant.get("queries_per_shard", 3), progress=False)
        assert judge.scored == len(pairs)  # nothing reused from the killed run's shards
    assert len([p for p in shards.iterdir() if p.is_dir()]) == 2  # the killed run + the last (finished) one
    assert killed.is_dir() and not (killed / "FINISHED").exists()
    resumed = FakeJudge()
    assert score_pairs(make_pairs(), resumed, out, shards, queries_per_shard=3, progress=False).equals(reference)
    assert resumed.scored == 20


def test_a_backend_returning_the_wrong_number_of_results_is_an_error(tmp_path):
    class Short(FakeJudge):
        def score(self, pairs):
            return super().score(pairs)[:-1]

    with pytest.raises(RuntimeError, match="returned 14 results for 15 pairs"):
        score_pairs(make_pairs(), Short(), tmp_path / "o.parquet", tmp_path / "s", queries_per_shard=3, progress=False)
