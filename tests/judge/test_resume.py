"""Judge resume keys: everything that determines a score keys the shards; reused shards are verified;
orphans of killed writes are removed; too many failed pairs fail the run (UniME-V2 judge scores)."""
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uniembed.judge import resume
from uniembed.judge.failures import JudgeFailureError, check_failures, check_limit, error_kind, failure_summary
from uniembed.judge.prompt import prompt_hash
from uniembed.judge.resume import resume_key, weights_digest
from uniembed.judge.scoring import JudgeResult, score_pairs
from uniembed.provenance import code_version

from .test_scoring import FakeJudge, make_pairs, run_dir

TRANSFORMERS = {"backend": "transformers", "weights": "w0", "adapter": None, "dtype": "float32", "device_type": "cpu"}
SERVER = {"backend": "vllm_server", "served_model": "/models/judge", "weights": "w0", "top_logprobs": 20, "server": {}}


def killed_run(tmp_path, settings=TRANSFORMERS):
    """A run killed after its first two shards (q0-q5 scored, 30 of 50 pairs)."""
    out, shards = tmp_path / "judge_scores.parquet", tmp_path / "shards"
    with pytest.raises(ConnectionError):
        score_pairs(make_pairs(), FakeJudge(crash_after=2, settings=settings), out, shards, queries_per_shard=3,
                    progress=False)
    return out, shards


def rerun(out, shards, **settings):
    judge = FakeJudge(settings=settings or TRANSFORMERS)
    score_pairs(make_pairs(), judge, out, shards, queries_per_shard=3, progress=False)
    return judge.scored


def test_the_key_holds_weights_backend_settings_prompt_and_code():
    key = resume_key(make_pairs(), 3, FakeJudge(settings=TRANSFORMERS))
    assert key["backend"] == TRANSFORMERS and key["prompt_hash"] == prompt_hash()
    assert key["code_version"] == code_version("judge") and key["judge_model"] == "fake-judge"
    assert key["num_pairs"] == 50 and key["queries_per_shard"] == 3


@pytest.mark.parametrize("change", [
    {"backend": "vllm_server"},             # transformers -> vllm_server, same path and weights
    {"weights": "w1"},                      # new weights at the same path
    {"dtype": "bfloat16"},                  # a scoring setting
])
def test_a_changed_key_never_reuses_the_killed_runs_shards(tmp_path, change):
    out, shards = killed_run(tmp_path)
    assert rerun(out, shards, **{**TRANSFORMERS, **change}) == 50  # fresh, in its own directory
    assert rerun(out, shards, **TRANSFORMERS) == 20                 # the killed run still resumes


@pytest.mark.parametrize("target", ["prompt_hash", "code_version"])
def test_a_new_prompt_or_judge_code_starts_fresh(tmp_path, monkeypatch, target):
    out, shards = killed_run(tmp_path)
    monkeypatch.setattr(resume, target, lambda *args: "changed")
    assert rerun(out, shards) == 50


def test_weights_digest_covers_whole_weight_files(tiny_qwen2vl, tmp_path):
    model = tmp_path / "judge"
    shutil.copytree(tiny_qwen2vl, model)
    (model / "artifact_manifest.json").unlink()  # an external judge: with the manifest, the edit fails verification
    before = weights_digest(model)
    weights = sorted(model.glob("*.safetensors"))[0]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a tensor in the middle: both ends unchanged
    weights.write_bytes(bytes(data))
    assert weights_digest(model) != before
    assert weights_digest("Qwen/Qwen2.5-VL-7B-Instruct") is None and weights_digest(None) is None


def test_a_server_backend_key_has_no_api_key(tmp_path):
    from uniembed.judge.vllm_client import VllmClientJudge

    client = VllmClientJudge("http://127.0.0.1:9", "/models/judge", api_key="sk-secret-123", concurrency=2, timeout=5)
    key = resume_key(make_pairs(), 3, client)
    assert key["backend"] == {**SERVER, "weights": None}
    assert "sk-secret-123" not in json.dumps(key) and "sk-secret-123" not in repr(client)
    assert resume_key(make_pairs(), 3, VllmClientJudge("http://h:1", "/models/judge", concurrency=64, timeout=1,
                                                       retries=9)) == key  # throughput settings are not in the key


def _rewrite(path, table, metadata=True):
    meta = pq.read_schema(path).metadata if metadata else None
    pq.write_table(table.replace_schema_metadata(meta), path)


@pytest.mark.parametrize("tamper, message", [
    (lambda d: shutil.copy(d / "shard-00001.parquet", d / "shard-00000.parquet"),
     r"judge shard 0 is not the piece this run expects: index is 1, expected 0; pairs_digest"),
    (lambda d: _rewrite(d / "shard-00000.parquet", pq.read_table(d / "shard-00000.parquet").slice(1)),
     r"judge shard 0 .*it has 14 rows, expected 15"),
    (lambda d: _rewrite(d / "shard-00001.parquet", pq.read_table(d / "shard-00001.parquet"), metadata=False),
     r"judge shard 1 .*no shard plan in its metadata"),
    (lambda d: (d / "shard-00000.parquet").write_bytes(b"PAR1 truncated"), r"judge shard 0 cannot be read"),
])
def test_a_reused_shard_that_is_not_the_planned_piece_is_refused(tmp_path, tamper, message):
    out, shards = killed_run(tmp_path)
    tamper(run_dir(shards))
    with pytest.raises(ValueError, match=message) as error:
        rerun(out, shards)
    assert "shard-0000" in str(error.value) and "Delete" in str(error.value)


def test_a_shard_with_other_rows_under_the_right_plan_is_refused(tmp_path):
    out, shards = killed_run(tmp_path)
    path = run_dir(shards) / "shard-00000.parquet"
    table = pq.read_table(path)
    ids = table["candidate_id"].to_pylist()
    _rewrite(path, table.set_column(1, table.schema.field(1), pa.array([ids[1], ids[0], *ids[2:]])))
    with pytest.raises(ValueError, match=r"shard-00000.parquet: .*row 0 is \('q0', 'c0-1'"):
        rerun(out, shards)


def test_an_edited_manifest_is_refused(tmp_path):
    out, shards = killed_run(tmp_path)
    manifest = run_dir(shards) / "manifest.json"
    key = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**key, "prompt_hash": "other"}))
    with pytest.raises(ValueError, match=r"manifest.json: the resume key differs .*\['prompt_hash'\]"):
        rerun(out, shards)


def test_orphans_of_killed_writes_are_removed_at_resume(tmp_path):
    out, shards = killed_run(tmp_path)
    run = run_dir(shards)
    orphans = [run / ".shard-00002.parquet.k1ll3d.tmp", out.parent / ".judge_scores.parquet.x7.tmp",
               shards / ".0123abcd.q9.tmp"]
    for orphan in orphans[:2]:
        orphan.write_bytes(b"half a file")
    orphans[2].mkdir()
    (orphans[2] / "shard-00000.parquet").write_bytes(b"x")
    keep = out.parent / "notes.tmp"
    keep.write_text("not ours")
    assert rerun(out, shards) == 20
    assert not any(o.exists() for o in orphans) and keep.exists()


def test_too_many_failed_pairs_fail_the_run_with_counts_by_kind(tmp_path):
    class Dead(FakeJudge):
        def score(self, pairs):
            self.calls.append([(p.query_id, p.candidate_id) for p in pairs])
            return [JudgeResult.failed("gave up after 4 attempts: HTTP 503: engine dead") if p.is_positive
                    else JudgeResult.failed("ConnectionError: refused") for p in pairs]

    out, shards = tmp_path / "judge_scores.parquet", tmp_path / "shards"
    with pytest.raises(JudgeFailureError, match=r"50 of 50 judge pairs failed \(fraction 1.0000\), above "
                                                 r"recipe.judge.max_failed_fraction = 0.01; errors by kind: "
                                                 r"ConnectionError: 40, HTTP 503: 10"):
        score_pairs(make_pairs(), Dead(), out, shards, queries_per_shard=3, progress=False, max_failed_fraction=0.01)
    assert not out.exists() and not (run_dir(shards) / "FINISHED").exists()
    healthy = FakeJudge()
    score_pairs(make_pairs(), healthy, out, shards, queries_per_shard=3, progress=False, max_failed_fraction=0.01)
    assert healthy.scored == 50 and [len(c) for c in healthy.calls] == [15, 15, 15, 5]  # failed rows retried
    assert (run_dir(shards) / "FINISHED").is_file()


def test_error_kinds_summary_and_limit():
    assert error_kind("gave up after 3 attempts: HTTP 503: {\"error\": 1}") == "HTTP 503"
    assert error_kind("Yes/No not in top-20 logprobs (missing 'Yes'); raise top_logprobs") == \
        "Yes/No not in top-20 logprobs"
    assert error_kind("malformed response (KeyError: 'choices'): ...") == "malformed response"
    assert error_kind(None) == "unknown"
    table = pa.table({"status": ["ok", "failed", "ok", "ok"], "error": [None, "OSError: gone", None, None]})
    assert failure_summary(table) == {"pairs": 4, "failed": 1, "fraction": 0.25, "by_kind": {"OSError": 1}}
    assert check_failures(table, 0.25, "f.parquet")["failed"] == 1
    with pytest.raises(JudgeFailureError, match=r"^f.parquet: 1 of 4 judge pairs failed \(fraction 0.2500\)"):
        check_failures(table, 0.2, "f.parquet")
    for bad in (1.5, -0.1, "lots", None):
        with pytest.raises(ValueError, match="recipe.judge.max_failed_fraction must"):
            check_limit(bad)
