"""The identity world (VisME): look-alike groups that differ only in their marks, every view keeping the mark, and
the four meta-tasks' truth: every target shows the query's identity, no distractor does, look-alikes are in the pool."""
import numpy as np
import pytest

from uniembed.data.synthetic.identity import ALL_MARKS, VIEWS, draw_identities, render_identity
from uniembed.data.synthetic.identity_tasks import BUILDERS, META_TASKS, REID_TARGETS
from uniembed.data.synthetic.world import seeded_rng

IDENTITIES = draw_identities(seed=0, groups=3, per_group=4)


def test_groups_are_look_alikes_that_differ_only_in_their_marks():
    groups = {}
    for ident in IDENTITIES:
        groups.setdefault(ident.group, []).append(ident.mark)
    assert len(groups) == 3 and all(len(marks) == len(set(marks)) == 4 for marks in groups.values())
    assert all(3 <= len(m) <= 6 for m in ALL_MARKS) and len(set(ALL_MARKS)) == len(ALL_MARKS) == 420
    assert draw_identities(seed=0, groups=3, per_group=4) == IDENTITIES != draw_identities(seed=1, groups=3, per_group=4)
    with pytest.raises(ValueError, match="per_group"):
        draw_identities(seed=0, groups=3, per_group=1)


@pytest.mark.parametrize("view", VIEWS)
def test_two_look_alikes_drawn_alike_differ_only_where_their_marks_are(view):
    a, b = IDENTITIES[0], IDENTITIES[1]
    assert a.group == b.group and a.mark != b.mark
    kwargs = {"edit_color": "red" if a.color != "red" else "blue"} if view == "edited" else {}
    pa, pb = (np.asarray(render_identity(x, view, seeded_rng(7, "same"), **kwargs), dtype=int) for x in (a, b))
    ys, xs = np.nonzero(np.abs(pa - pb).sum(axis=2))
    assert len(ys) > 0                                   # the mark is drawn
    assert ys.max() - ys.min() <= 16 and xs.max() - xs.min() <= 16   # and only the mark's box differs
    dark = (pa.sum(axis=2) < 60) | (pb.sum(axis=2) < 60)
    assert dark[ys.min():ys.max() + 1, xs.min():xs.max() + 1].any()  # dark dots, not a colour change


@pytest.mark.parametrize("name", META_TASKS)
def test_every_target_shows_the_querys_identity_and_no_distractor_does(name):
    task = BUILDERS[name](IDENTITIES, seed=0)
    assert len(task.queries) == len(IDENTITIES) and set(task.shows) == set(task.gallery)
    for query in task.queries:
        ident = query["identity_id"]
        assert {task.shows[p] for p in query["positives"]} == {ident}
        distractors = [p for p in task.gallery if p not in query["positives"]]
        assert all(task.shows[p] != ident for p in distractors)
        group = ident.rsplit("-", 1)[0]
        look_alikes = {task.shows[p] for p in distractors if task.shows[p].rsplit("-", 1)[0] == group}
        assert len(look_alikes) == 3   # every other identity of the group is a distractor
        if name == "reidentification":
            assert REID_TARGETS[0] <= len(query["positives"]) <= REID_TARGETS[1]


def test_editing_paints_a_whole_group_alike_and_grounding_names_its_identity():
    editing = BUILDERS["editing"](IDENTITIES, seed=0)
    colors = {}
    for query in editing.queries:
        color = query["text"].removeprefix("painted ")
        group = query["identity_id"].rsplit("-", 1)[0]
        assert colors.setdefault(group, color) == color and not group.endswith(color)
        assert query["positives"][0].endswith(f"edited-{color}")
    grounding = BUILDERS["grounding"](IDENTITIES, seed=0)
    for query in grounding.queries:
        shape, color, _ = query["identity_id"].split("-")
        assert query["text"] == f"the {color} {shape}" and "{" not in query["instruction"]
