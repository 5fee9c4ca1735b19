"""VisME's identity meta-tasks scored for an embedder: an embedder that sees the mark finds every identity, one that
sees only what the words name (shape and colour) is at the look-alikes' chance; both against direct counts."""
import numpy as np
import pytest

from uniembed.data.synthetic.identity import draw_identities
from uniembed.data.synthetic.identity_tasks import BUILDERS, INSTRUCTIONS
from uniembed.evaluate.identity import evaluate_identity

IDENTITIES = draw_identities(seed=0, groups=2, per_group=3)


class ByPicture:
    """Embeds each picture as a fixed vector of what it shows: the identity (``sees_mark``) or only its group."""

    def __init__(self, tasks, sees_mark: bool):
        self.vector, self.instructions = {}, []
        names = sorted({i.identity_id for i in IDENTITIES})
        groups = sorted({i.identity_id.rsplit("-", 1)[0] for i in IDENTITIES})
        for task in tasks.values():
            for pid, image in task.gallery.items():
                self.vector[id(image)] = self._one_hot(task.shows[pid], names, groups, sees_mark)
            for q in task.queries:
                self.vector[id(q["image"])] = self._one_hot(q["identity_id"], names, groups, sees_mark)

    @staticmethod
    def _one_hot(identity, names, groups, sees_mark):
        keys = names if sees_mark else groups
        key = identity if sees_mark else identity.rsplit("-", 1)[0]
        v = np.zeros(len(keys), dtype=np.float32)
        v[keys.index(key)] = 1.0
        return v

    def encode(self, items, batch_size=32):
        self.instructions += [(i.instruction, i.text) for i in items]
        return np.stack([self.vector[id(i.image)] for i in items])


def _values(rows, task, metric):
    (row,) = [r for r in rows if r["setting"] == task and r["metric"] == metric]
    return row["value"]


@pytest.fixture(scope="module")
def tasks():
    return {name: build(IDENTITIES, seed=0) for name, build in BUILDERS.items()}


def test_an_embedder_that_sees_the_mark_finds_every_identity(tasks):
    embedder = ByPicture(tasks, sees_mark=True)
    rows = evaluate_identity(embedder, tasks, "oracle")
    assert {(r["setting"], r["metric"]): r["value"] for r in rows} == {
        (t, m): 100.0 for t in tasks for m in ("Recall@1", "Recall@5", "mAP@10")}
    assert {r["benchmark"] for r in rows} == {"visme"} and {r["n_queries"] for r in rows} == {len(IDENTITIES)}
    asked = [(i, t) for i, t in embedder.instructions if i]   # the query side carries its instruction and its text
    assert {i for i, _ in asked} == set(INSTRUCTIONS.values()) and any(t and t.startswith("painted ") for _, t in asked)


def test_an_embedder_that_sees_only_the_words_ranks_look_alikes_by_the_tie_rule(tasks):
    rows = evaluate_identity(ByPicture(tasks, sees_mark=False), tasks, "words")
    for name, task in tasks.items():
        hits = []
        for q in task.queries:   # all of the group's pictures tie: trec_eval orders ties by id, descending
            group = q["identity_id"].rsplit("-", 1)[0]
            tied = sorted((p for p in task.gallery if task.shows[p].rsplit("-", 1)[0] == group), reverse=True)
            hits.append(tied[0] in q["positives"])
        assert _values(rows, name, "Recall@1") == pytest.approx(100 * np.mean(hits))
    assert _values(rows, "editing", "Recall@1") < 100.0


def test_the_visme_table_has_table_6s_meta_tasks_and_its_all_row(tasks):
    from uniembed.evaluate.tables import render_tables

    rows = evaluate_identity(ByPicture(tasks, sees_mark=False), tasks, "words")
    rows += evaluate_identity(ByPicture(tasks, sees_mark=True), tasks, "oracle")
    text = render_tables(rows, "markdown", "t")
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0] == "| Meta-task | Metric | words | oracle |"
    assert [line.split(" | ")[0] for line in lines[1:]] == (
        ["| Identity Recognition"] * 3 + ["| Re-Identification"] * 3 + ["| Identity Grounding"] * 3
        + ["| Identity Editing"] * 3 + ["| All"])
    words = np.mean([_values([r for r in rows if r["tag"] == "words"], t, "Recall@1") for t in tasks])
    assert lines[-1] == f"| All | Recall@1, mean of the meta-tasks | {words:.1f} | 100.0 |"
    assert "\\bottomrule" in render_tables(rows, "latex", "t")


def _row(tag, task, value, metric="Recall@1"):
    return {"tag": tag, "benchmark": "visme", "setting": task, "metric": metric, "value": value}


def test_the_training_effect_is_the_seed_mean_against_the_start_in_units_of_the_seed_spread():
    from uniembed.evaluate.identity_training import training_effect, training_effect_table

    before = {"recognition": 40.0, "editing": 2.0}
    after = {"s0": {"recognition": 20.0, "editing": 25.0}, "s1": {"recognition": 30.0, "editing": 21.0},
             "s2": {"recognition": 25.0, "editing": 26.0}}
    rows = [_row("start", t, v) for t, v in before.items()] + [_row("start", "editing", 99.0, "Recall@5")]
    rows += [_row(tag, t, v) for tag, values in after.items() for t, v in values.items()]
    effect = {e["task"]: e for e in training_effect(rows, "start", list(after), metrics=("Recall@1",))}
    editing = np.array([25.0, 21.0, 26.0])
    assert effect["editing"]["after_mean"] == pytest.approx(24.0) and effect["editing"]["before"] == 2.0
    assert effect["editing"]["after_sd"] == pytest.approx(np.sqrt(((editing - 24.0) ** 2).sum() / 2))
    assert effect["editing"]["gain_in_sd"] == pytest.approx(22.0 / effect["editing"]["after_sd"])
    assert effect["recognition"]["gain"] == pytest.approx(-15.0) and effect["recognition"]["seeds"] == 3
    means = [np.mean([v["recognition"], v["editing"]]) for v in after.values()]
    assert effect["all"]["before"] == 21.0 and effect["all"]["after_mean"] == pytest.approx(np.mean(means))
    assert effect["all"]["after_sd"] == pytest.approx(np.std(means, ddof=1))
    table = training_effect_table(list(effect.values()), "start")
    assert "| Identity Editing | Recall@1 | 2.0 | 24.0 ± 2.6 | +22.0 | +8.3 |" in table
    with pytest.raises(ValueError, match="missing"):
        training_effect(rows[:1] + rows[3:], "start", list(after), metrics=("Recall@1",))
    tied = [_row("start", "editing", 2.0)] + [_row(tag, "editing", 5.0) for tag in ("a", "b")]
    (flat, _), (single, _) = (training_effect(tied, "start", tags, metrics=("Recall@1",)) for tags in (["a", "b"], ["a"]))
    assert (flat["after_sd"], flat["gain_in_sd"], single["after_sd"], single["gain_in_sd"]) == (0.0, None, None, None)
    assert "| Identity Editing | Recall@1 | 2.0 | 5.0 | +3.0 | – |" in training_effect_table([single], "start")
    with pytest.raises(ValueError, match="Recall@5 of 'start'"):   # every metric asked for must be there
        training_effect(rows, "start", list(after), metrics=("Recall@1", "Recall@5"))
