"""The judge prompt (UniME-V2's instruction, query first) and the pair list built from mined candidates."""
import base64

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from uniembed.embed.embedder import EmbedItem
from uniembed.judge import prompt as prompt_module
from uniembed.judge.pairs import build_judge_pairs, pairs_digest
from uniembed.judge.prompt import build_judge_prompt, prompt_hash
from uniembed.model.processor import load_processor

from . import mined_table

PAPER = ("I will provide you with a query and a candidate. Please evaluate whether the candidate meets the "
         "requirements of the query. If it does, respond with 'Yes'; if it doesn't, respond with 'No'. "
         "Query:<Query>, Candidates:<Candidate>.")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("judge-img")
    Image.new("RGB", (56, 56), (220, 20, 20)).save(root / "q.png")
    Image.new("RGB", (84, 56), (20, 20, 220)).save(root / "c.png")
    return str(root / "q.png"), str(root / "c.png")


def test_prompt_is_the_papers_instruction_with_the_query_first(images, tiny_qwen2vl):
    query = EmbedItem("a red circle", images[0], "Find the matching caption.")
    prompt = build_judge_prompt(query, EmbedItem("a blue square", images[1]))
    assert prompt_module.JUDGE_INSTRUCTION == PAPER
    assert [kind for kind, _ in prompt.parts] == ["text", "image", "text", "image", "text"]
    assert prompt.parts[0][1] == PAPER.split("<Query>")[0] + "Find the matching caption. "
    assert prompt.parts[2][1] == "a red circle, Candidates:"
    assert prompt.parts[4][1] == "a blue square."
    assert prompt.image_paths == list(images)

    processor = load_processor(tiny_qwen2vl)
    text, paths = prompt.render(processor)
    slot = "<|vision_start|><|image_pad|><|vision_end|>"
    body = (PAPER.split("<Query>")[0] + f"Find the matching caption. {slot}a red circle, Candidates:"
            f"{slot}a blue square.")
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    f"{body}<|im_end|>\n<|im_start|>assistant\n")
    assert paths == list(images)
    # the server renders the OpenAI messages through the same chat template: same prompt
    assert processor.apply_chat_template(prompt.messages(), tokenize=False, add_generation_prompt=True) == text

    # candidates of one query share everything up to the candidate (prefix caching)
    other, _ = build_judge_prompt(query, EmbedItem("a green star", None)).render(processor)
    shared = len(text.split(", Candidates:")[0]) + len(", Candidates:")
    assert other[:shared] == text[:shared] and other[shared:].startswith("a green star.")


def test_messages_send_images_as_base64_data_urls(images):
    prompt = build_judge_prompt(EmbedItem("only text"), EmbedItem(None, images[1]))
    (message,) = prompt.messages()
    assert message["role"] == "user"
    assert [part["type"] for part in message["content"]] == ["text", "image_url", "text"]
    url = message["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    with open(images[1], "rb") as handle:
        assert base64.b64decode(url.split(",", 1)[1]) == handle.read()
    assert message["content"][0]["text"].endswith("Query:only text, Candidates:")
    assert message["content"][2]["text"] == "."
    with pytest.raises(ValueError, match="candidate has neither text nor an image"):
        build_judge_prompt(EmbedItem("q"), EmbedItem(None, None))


def test_prompt_hash_is_pinned_and_follows_the_version(monkeypatch):
    assert prompt_hash() == "b332ca129626eb0cbf6e4a0cc15b22748db5194a88d7daf3c7bc3dbcc3dd2eb0"
    assert prompt_hash() == prompt_hash()
    monkeypatch.setattr(prompt_module, "PROMPT_VERSION", prompt_module.PROMPT_VERSION + "-changed")
    assert prompt_hash() != "b332ca129626eb0cbf6e4a0cc15b22748db5194a88d7daf3c7bc3dbcc3dd2eb0"


def _curated(small_world):
    return small_world["curated"]["mbeir"]


def _query_ids(curated, count):
    table = pq.read_table(curated / "queries.parquet", columns=["query_id", "image_path", "split"])
    rows = [r for r in table.to_pylist() if r["split"] == "train"]
    with_image = [r["query_id"] for r in rows if r["image_path"]]
    without = [r["query_id"] for r in rows if not r["image_path"]]
    return with_image[: count - 1] + without[:1]


def test_pairs_are_positives_then_mined_by_rank_grouped_in_query_order(small_world):
    curated = _curated(small_world)
    qids = _query_ids(curated, 3)
    mined = mined_table(curated, list(reversed(qids)), per_query=5)
    pairs = build_judge_pairs(curated / "queries.parquet", curated / "candidates.parquet", mined)

    queries = {r["query_id"]: r for r in pq.read_table(curated / "queries.parquet").to_pylist()}
    order = [qid for qid in queries if qid in qids]
    assert [p.query_id for p in pairs] == [q for q in order for _ in range(len(queries[q]["positive_ids"]) + 5)]
    for qid in order:
        mine = [p for p in pairs if p.query_id == qid]
        n_pos = len(queries[qid]["positive_ids"])
        assert [p.candidate_id for p in mine[:n_pos]] == queries[qid]["positive_ids"]
        assert all(p.is_positive and p.rank is None for p in mine[:n_pos])
        assert [p.rank for p in mine[n_pos:]] == [1, 2, 3, 4, 5]
        expected = mined.filter(pc.equal(mined["query_id"], qid)).sort_by("rank")["candidate_id"].to_pylist()
        assert [p.candidate_id for p in mine[n_pos:]] == expected
        assert mine[0].query == EmbedItem(queries[qid]["text"], queries[qid]["image_path"], queries[qid]["instruction"])
    assert pairs_digest(pairs) == pairs_digest(list(pairs)) != pairs_digest(pairs[:-1])


def test_a_missing_candidate_image_is_named_before_scoring(small_world, tmp_path):
    curated = _curated(small_world)
    qids = _query_ids(curated, 2)
    mined = mined_table(curated, qids, per_query=5)
    candidates = pq.read_table(curated / "candidates.parquet")
    victim = next(c for c in mined["candidate_id"].to_pylist()
                  if candidates.filter(pc.equal(candidates["candidate_id"], c))["image_path"][0].as_py())
    paths = [f"/nonexistent/{cid}.png" if cid == victim else path for cid, path in
             zip(candidates["candidate_id"].to_pylist(), candidates["image_path"].to_pylist())]
    broken = candidates.set_column(candidates.schema.get_field_index("image_path"), "image_path",
                                   pa.array(paths, pa.string()))
    with pytest.raises(FileNotFoundError, match=f"candidate {victim}: image file not found: /nonexistent/{victim}.png"):
        build_judge_pairs(curated / "queries.parquet", broken, mined)


def test_inconsistent_mined_tables_are_refused(small_world):
    curated = _curated(small_world)
    qid = _query_ids(curated, 1)[0]
    queries, candidates = curated / "queries.parquet", curated / "candidates.parquet"
    mined = mined_table(curated, [qid], per_query=2)
    positive = pq.read_table(queries).filter(pc.equal(pc.field("query_id"), qid))["positive_ids"][0].as_py()[0]
    schema = mined.schema
    with_positive = pa.Table.from_pylist(mined.to_pylist() + [
        {"query_id": qid, "rank": 3, "candidate_id": positive, "similarity": 0.5}], schema=schema)
    with pytest.raises(ValueError, match="include its positives"):
        build_judge_pairs(queries, candidates, with_positive)
    unknown = pa.Table.from_pylist([{"query_id": "nope", "rank": 1, "candidate_id": positive, "similarity": 0.5}],
                                   schema=schema)
    with pytest.raises(ValueError, match="query ids not in the queries table"):
        build_judge_pairs(queries, candidates, unknown)
    ghost = pa.Table.from_pylist([{"query_id": qid, "rank": 1, "candidate_id": "ghost", "similarity": 0.5}],
                                 schema=schema)
    with pytest.raises(ValueError, match="candidate ghost is not in the candidates table"):
        build_judge_pairs(queries, candidates, ghost)
    twice = pa.Table.from_pylist(mined.to_pylist() + [dict(mined.to_pylist()[0], rank=9)], schema=schema)
    with pytest.raises(ValueError, match="listed twice"):
        build_judge_pairs(queries, candidates, twice)
