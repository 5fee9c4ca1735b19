"""The transformers judge with DataLoader workers preparing its batches: the same scores and generations as without
workers, and an item that cannot be rendered stays a failed result at its own index."""
import pytest
from PIL import Image

from uniembed.data.loader import LoaderSettings
from uniembed.embed.embedder import EmbedItem
from uniembed.judge.pairs import JudgePair
from uniembed.judge.prompt import build_judge_prompt
from uniembed.judge.transformers_backend import TransformersJudge


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("judge-workers")
    paths = []
    for i, (size, colour) in enumerate([((56, 56), (220, 20, 20)), ((112, 84), (20, 200, 20)), ((84, 56), (20, 20, 220))]):
        Image.new("RGB", size, colour).save(root / f"{i}.png")
        paths.append(str(root / f"{i}.png"))
    (root / "broken.png").write_bytes(b"not an image at all")
    query = EmbedItem("a large red circle", paths[0], "Find the caption of this picture.")
    candidates = [EmbedItem("a large red circle on the left"), EmbedItem(None, paths[1]),
                  EmbedItem("a picture", str(root / "broken.png")), EmbedItem("make it blue", paths[2]),
                  EmbedItem("x"), EmbedItem("a green square", paths[1]), EmbedItem("small"),
                  EmbedItem(None, str(root / "missing.png"))]
    return [JudgePair("q1", f"c{i}", i == 0, None if i == 0 else i, query, c) for i, c in enumerate(candidates)]


def test_scores_and_failures_are_identical_for_0_and_2_workers(tiny_qwen2vl, pairs):
    judge = TransformersJudge(tiny_qwen2vl, batch_size=3, device="cpu")
    inline = judge.score(pairs)
    judge.loader = LoaderSettings(workers=2, prefetch_factor=1)
    assert judge.score(pairs) == inline
    failed = {i: r.error for i, r in enumerate(inline) if r.status != "ok"}
    assert sorted(failed) == [2, 7]   # the unreadable and the missing image, each at its own index
    assert failed[2].startswith("UnidentifiedImageError: ") and failed[7].startswith("FileNotFoundError: ")
    assert all(r.status == "ok" and 0 < r.score < 1 for i, r in enumerate(inline) if i not in failed)


def test_generations_and_failures_are_identical_for_0_and_2_workers(tiny_qwen2vl, pairs):
    prompts = [build_judge_prompt(p.query, p.candidate) for p in pairs]
    judge = TransformersJudge(tiny_qwen2vl, batch_size=4, device="cpu")
    inline = judge.generate(prompts, max_new_tokens=2)
    judge.loader = LoaderSettings(workers=2)
    assert judge.generate(prompts, max_new_tokens=2) == inline
    assert [i for i, g in enumerate(inline) if g.status != "ok"] == [2, 7]
