"""TransformersJudge on the tiny Qwen2-VL: s = e_y / (e_y + e_n) (UniME-V2), one forward pass per batch."""
import math

import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from uniembed.embed.cache import fingerprint_model_dir
from uniembed.embed.embedder import EmbedItem
from uniembed.judge import transformers_backend
from uniembed.judge.pairs import JudgePair, build_judge_pairs
from uniembed.judge.prompt import build_judge_prompt, prompt_hash
from uniembed.judge.scoring import score_pairs
from uniembed.judge.transformers_backend import TransformersJudge
from uniembed.mine.schemas import JUDGE_SCORES
from uniembed.model.loading import load_for_generation
from uniembed.model.processor import load_processor

from . import mined_table


@pytest.fixture(scope="module")
def judge(tiny_qwen2vl):
    return TransformersJudge(tiny_qwen2vl, batch_size=4, device="cpu")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("judge-tf")
    paths = []
    specs = [((56, 56), (220, 20, 20)), ((112, 84), (20, 200, 20)), ((84, 56), (20, 20, 220))]
    for i, (size, colour) in enumerate(specs):
        Image.new("RGB", size, colour).save(root / f"{i}.png")
        paths.append(str(root / f"{i}.png"))
    q1 = EmbedItem("a large red circle", paths[0], "Find the caption of this picture.")
    q2 = EmbedItem("a small green square at the top of the picture", None, "Retrieve the image.")
    cands = [EmbedItem("a large red circle on the left"), EmbedItem(None, paths[1]),
             EmbedItem("make it blue", paths[2]), EmbedItem("x")]
    return ([JudgePair("q1", f"c{i}", i == 0, None if i == 0 else i, q1, c) for i, c in enumerate(cands)]
            + [JudgePair("q2", f"c{i}", False, i + 1, q2, c) for i, c in enumerate(cands)])


def _direct(tiny_qwen2vl, pair):
    """Softmax over [No, Yes] of the last position of a plain full forward of one unpadded prompt."""
    processor = load_processor(tiny_qwen2vl)
    model = load_for_generation(tiny_qwen2vl).eval()
    text, paths = build_judge_prompt(pair.query, pair.candidate).render(processor)
    images = [Image.open(p).convert("RGB") for p in paths]
    batch = processor(text=[text], images=images or None, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits[0, -1]
    tok = processor.tokenizer
    yes, no = tok.convert_tokens_to_ids("Yes"), tok.convert_tokens_to_ids("No")
    return torch.softmax(logits[[no, yes]].double(), dim=0)[1].item(), logits[yes].item(), logits[no].item()


def test_scores_equal_a_direct_softmax_over_no_yes_logits(judge, pairs, tiny_qwen2vl):
    results = judge.score(pairs)
    assert all(r.status == "ok" and r.error is None for r in results)
    for pair, result in zip(pairs, results):
        score, yes, no = _direct(tiny_qwen2vl, pair)
        assert 0.0 < result.score < 1.0
        assert result.score == pytest.approx(score, abs=1e-5)
        assert (result.yes_logit, result.no_logit) == pytest.approx((yes, no), abs=1e-4)
        assert result.score == pytest.approx(1 / (1 + math.exp(result.no_logit - result.yes_logit)), abs=1e-6)
    assert len({round(r.score, 6) for r in results}) > 1  # different pairs, different scores


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_batch_size_and_padding_do_not_change_scores(judge, pairs, batch_size):
    reference = [r.score for r in judge.score(pairs)]
    judge.batch_size = batch_size
    try:
        assert [r.score for r in judge.score(pairs)] == pytest.approx(reference, abs=1e-5)
        assert [r.score for r in judge.score(pairs[::-1])][::-1] == pytest.approx(reference, abs=1e-5)
    finally:
        judge.batch_size = 4


def test_an_unreadable_image_fails_only_its_pair(judge, pairs, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    broken = JudgePair("q9", "bad", False, 1, pairs[0].query, EmbedItem("x", str(tmp_path / "bad.png")))
    results = judge.score([pairs[0], broken, pairs[1]])
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    assert results[1].score is None and "bad.png" in results[1].error


class _SplitYes:
    """A tokenizer wrapper under which "Yes" is two tokens."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, text, **kwargs):
        out = self._tokenizer(text, **kwargs)
        if text == "Yes":
            pieces = [self._tokenizer(piece, **kwargs)["input_ids"] for piece in ("Ye", "s")]
            out["input_ids"] = pieces[0] + pieces[1]
        return out


def test_a_multi_token_yes_is_an_error_at_start(tiny_qwen2vl, monkeypatch):
    def processor_with_split_yes(path):
        processor = load_processor(path)
        processor.tokenizer = _SplitYes(processor.tokenizer)
        return processor

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded when the judge words are not single tokens")

    monkeypatch.setattr(transformers_backend, "load_processor", processor_with_split_yes)
    monkeypatch.setattr(transformers_backend, "load_for_generation", no_model)
    with pytest.raises(ValueError, match="'Yes' is not a single token"):
        TransformersJudge(tiny_qwen2vl, device="cpu")


def test_score_pairs_end_to_end_on_the_small_world(judge, small_world, tmp_path, tiny_qwen2vl):
    curated = small_world["curated"]["mbeir"]
    qids = [r["query_id"] for r in pq.read_table(curated / "queries.parquet").to_pylist()
            if r["split"] == "train"][::20][:4]
    pairs = build_judge_pairs(curated / "queries.parquet", curated / "candidates.parquet",
                              mined_table(curated, qids, per_query=4))
    table = score_pairs(pairs, judge, tmp_path / "judge_scores.parquet", tmp_path / "shards",
                        queries_per_shard=2, progress=False)
    assert table.schema.equals(JUDGE_SCORES)
    assert pq.read_table(tmp_path / "judge_scores.parquet").equals(table)
    rows = table.to_pylist()
    assert [(r["query_id"], r["candidate_id"]) for r in rows] == [(p.query_id, p.candidate_id) for p in pairs]
    assert all(r["status"] == "ok" and 0 < r["score"] < 1 for r in rows)
    assert {r["prompt_hash"] for r in rows} == {prompt_hash()}
    assert {r["judge_model"] for r in rows} == {judge.model_id}
    (run_dir,) = (tmp_path / "shards").iterdir()  # keyed by weights, dtype, device, prompt, code
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "FINISHED", "manifest.json", "shard-00000.parquet", "shard-00001.parquet"]
    assert judge.settings == {"backend": "transformers", "weights": fingerprint_model_dir(tiny_qwen2vl, full=True),
                              "adapter": None, "dtype": "float32", "device_type": "cpu"}


def test_greedy_generation_is_the_unpadded_prompts_own_and_only_its_new_tokens(judge, pairs, tiny_qwen2vl):
    """generate() in batches of mixed lengths (left padding) returns, per prompt, the decoded new tokens of a
    greedy generation of that prompt alone; its first token is the argmax of the prompt's last logits."""
    prompts = [build_judge_prompt(p.query, p.candidate) for p in pairs[:5]]
    batched = judge.generate(prompts, max_new_tokens=4)
    assert [g.status for g in batched] == ["ok"] * 5
    processor = load_processor(tiny_qwen2vl)
    model = load_for_generation(tiny_qwen2vl).eval()
    tok = processor.tokenizer
    for prompt, generation in zip(prompts, batched):
        text, paths = prompt.render(processor)
        batch = processor(text=[text], images=[Image.open(p).convert("RGB") for p in paths] or None, return_tensors="pt")
        with torch.no_grad():
            alone = model.generate(**batch, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
            first = int(model(**batch).logits[0, -1].argmax())
        new = alone[0, batch["input_ids"].shape[1]:]
        assert int(new[0]) == first
        assert generation.text == tok.decode(new, skip_special_tokens=True)
    assert [g.text for g in judge.generate(prompts[::-1], max_new_tokens=4)] == [g.text for g in batched][::-1]
