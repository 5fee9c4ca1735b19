"""The mteb wrapper: mteb scores the wrapper's own embeddings (its ModelMeta attached), and its retrieval score on a
local MIEB task equals the project's own evaluator's on the same model and draw."""
import numpy as np
import pytest

mteb = pytest.importorskip("mteb")  # the eval extra (installed by scripts/setup_env.sh): never skipped in CI

from uniembed.embed.embedder import EmbedItem, EmbeddingMode  # noqa: E402
from uniembed.evaluate.mieb.encoder import DEFAULT_NAME, MtebEncoder  # noqa: E402
from uniembed.evaluate.mieb import scores  # noqa: E402
from uniembed.evaluate.mieb.scores import t2i_retrieval  # noqa: E402
from uniembed.evaluate.mieb.tasks import (EXPERIMENTS, SHOTS, WorldColorSwap, WorldMultipleChoice,  # noqa: E402
                                          WorldPositionSwap, WorldShapeClustering, WorldShapeLinearProbe,
                                          WorldShapeZeroShot, WorldT2IRetrieval, WorldVisualSTS)
from uniembed.evaluate.mieb.world import T2I_PROMPT, WorldDraw  # noqa: E402

DRAW = WorldDraw(seed=3, n=24)


#: Smaller draws than the DAG's (tests.conftest's small world in spirit): >= 16 train pictures of every shape.
TRAIN, TEST = WorldDraw(seed=0, n=192, start=0), WorldDraw(seed=0, n=48, start=192)


@pytest.fixture(scope="module", params=[EmbeddingMode(), EmbeddingMode(pooling="last", attention="causal")],
                ids=["mean-bidirectional", "last-causal"])
def each_mode(request, tiny_qwen2vl):
    return MtebEncoder.from_pretrained(tiny_qwen2vl, mode=request.param, device="cpu")


@pytest.fixture(scope="module")
def encoder(tiny_qwen2vl):
    return MtebEncoder.from_pretrained(tiny_qwen2vl, device="cpu")


class _Loader(list):
    """What the wrapper reads of mteb's DataLoader: batches, and the dataset's features."""


def test_the_wrapper_embeds_text_image_and_fused_batches_as_the_embedder_does(each_mode):
    encoder = each_mode
    task = WorldT2IRetrieval(DRAW)
    embedder, images, texts = encoder.embedder, list(DRAW.images[:5]), DRAW.captions[:5]
    batches = {"text": [{"text": texts[:3]}, {"text": texts[3:]}], "image": [{"image": images}],
               "fused": [{"text": texts, "image": images}]}
    expected = {"text": [EmbedItem(t, instruction=T2I_PROMPT) for t in texts],
                "image": [EmbedItem(None, image=i) for i in images],
                "fused": [EmbedItem(t, image=i, instruction=T2I_PROMPT) for t, i in zip(texts, images)]}
    for kind, loader in batches.items():
        prompt_type = mteb.types.PromptType.document if kind == "image" else mteb.types.PromptType.query
        got = encoder.encode(_Loader(loader), task_metadata=task.metadata, hf_split="test", hf_subset="default",
                             prompt_type=prompt_type)
        np.testing.assert_allclose(got, embedder.encode(expected[kind]), atol=1e-5, err_msg=kind)
    # the instruction is the task's query prompt; documents get none (as candidates in training)
    assert encoder.instruction(task.metadata, mteb.types.PromptType.query) == T2I_PROMPT
    assert encoder.instruction(task.metadata, mteb.types.PromptType.document) is None


def test_an_image_file_and_the_same_image_in_memory_embed_alike(encoder, tmp_path):
    DRAW.images[0].save(tmp_path / "a.png")
    from_file = encoder.embedder.encode([EmbedItem("a caption", str(tmp_path / "a.png"))])
    in_memory = encoder.embedder.encode([EmbedItem("a caption", image=DRAW.images[0])])
    np.testing.assert_array_equal(from_file, in_memory)


def test_mteb_scores_the_wrappers_embeddings_as_the_projects_evaluator_does(encoder):
    assert encoder.mteb_model_meta.modalities == ["text", "image"]
    results = mteb.evaluate(encoder, tasks=[WorldT2IRetrieval(DRAW)], cache=None, show_progress_bar=False)
    (task_result,) = results.task_results
    assert results.model_name == DEFAULT_NAME   # mteb ran this model, not a placeholder
    mteb_ndcg = task_result.scores["test"][0]["ndcg_at_10"]
    ours = t2i_retrieval(encoder.embedder, DRAW)
    assert mteb_ndcg == pytest.approx(ours, abs=1e-5)
    assert 0.0 < ours < 1.0   # an untrained model: neither degenerate nor perfect


#: Each category's local task, its main score, and the project's own evaluator of the same number.
CATEGORIES = {
    "linear probe": (WorldShapeLinearProbe, "accuracy",
                     lambda e, t: scores.linear_probe(e, t.train, t.draw, SHOTS, EXPERIMENTS)),
    "zero-shot": (WorldShapeZeroShot, "accuracy", lambda e, t: scores.zero_shot(e, t.draw)),
    "clustering": (WorldShapeClustering, "nmi", lambda e, t: scores.clustering_nmi(e, t.draw)),
    "colour swap": (WorldColorSwap, "text_acc", lambda e, t: scores.swap_accuracy(e, t.draw, "color")),
    "position swap": (WorldPositionSwap, "text_acc", lambda e, t: scores.swap_accuracy(e, t.draw, "position")),
    "visual STS": (WorldVisualSTS, "cosine_spearman", lambda e, t: scores.visual_sts(e, t.draw)),
    "multiple choice": (WorldMultipleChoice, "accuracy", lambda e, t: scores.multiple_choice(e, t.draw)),
}


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_mteb_and_the_projects_evaluator_agree_on_each_category(encoder, category):
    task_class, main_score, ours = CATEGORIES[category]
    task = task_class(draw=TEST, train=TRAIN)
    results = mteb.evaluate(encoder, tasks=[task], cache=None, show_progress_bar=False)
    theirs = results.task_results[0].scores["test"][0][main_score]
    # mteb rounds retrieval metrics (multiple choice is scored as retrieval) to 5 decimals
    tolerance = 5.01e-6 if category == "multiple choice" else 1e-6
    assert theirs == pytest.approx(ours(encoder.embedder, task), abs=tolerance)


def test_the_linear_probe_samples_its_shots_as_mteb_does():
    task = WorldShapeLinearProbe(draw=TEST, train=TRAIN)
    task.load_data()
    train = task.dataset["train"]
    expected, order = [], None
    for experiment in range(EXPERIMENTS):
        _, order, rows = task._undersample_data(train, experiment, order)
        expected.append(rows)
    labels = train["label"]
    assert scores.k_shot_indices(labels, SHOTS, EXPERIMENTS) == expected
    assert all(sorted(np.bincount([labels[i] for i in rows]).tolist()) == [SHOTS] * 6 for rows in expected)
    assert len({tuple(sorted(rows)) for rows in expected}) == EXPERIMENTS   # each experiment its own shots


def test_a_draw_is_seeded_and_its_objects_distinct():
    a, b = WorldDraw(seed=3, n=24), WorldDraw(seed=3, n=24)
    assert a.objects == b.objects and len(set(a.objects)) == 24
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.images, b.images))
    assert WorldDraw(seed=4, n=24).objects != a.objects
    with pytest.raises(ValueError, match="n must be"):
        WorldDraw(n=0)


def test_a_batch_without_text_or_image_is_an_error(encoder):
    with pytest.raises(ValueError, match="neither 'text' nor 'image'"):
        encoder.items({"audio": [1]}, None)

