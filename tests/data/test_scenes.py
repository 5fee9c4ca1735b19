"""Multi-object scenes (ObjEmbed's data): exact boxes, phrases that fit one object each, the two captions, and
proposals whose IoU with the objects spans 0 to 1."""
import numpy as np
import pytest
import torch

from uniembed.data.synthetic.scenes import (OBJECTS_PER_SCENE, PHRASE_FORMS, SCENE_SIZE, SceneObject, draw_scene,
                                            proposals, referring_phrase, where)
from uniembed.data.synthetic.world import seeded_rng
from uniembed.train.region_losses import box_iou

SCENES = [draw_scene(seeded_rng(0, "scenes", str(i))) for i in range(40)]


def test_scenes_hold_two_to_five_distinct_objects_that_never_touch():
    counts = {len(s.objects) for s in SCENES}
    assert counts <= set(range(OBJECTS_PER_SCENE[0], OBJECTS_PER_SCENE[1] + 1)) and len(counts) >= 3
    for scene in SCENES:
        triples = [(o.shape, o.color, o.size) for o in scene.objects]
        assert len(set(triples)) == len(triples) and scene.image.size == (SCENE_SIZE, SCENE_SIZE)
        for i, a in enumerate(scene.objects):
            for b in scene.objects[i + 1:]:
                assert a.box[2] <= b.box[0] or b.box[2] <= a.box[0] or a.box[3] <= b.box[1] or b.box[3] <= a.box[1]


def test_each_box_is_exactly_the_pixels_its_object_covers():
    for scene in SCENES[:10]:
        pixels = np.asarray(scene.image, dtype=int)
        background = pixels[0, 0]
        drawn = np.abs(pixels - background).sum(-1) > 0
        covered = np.zeros_like(drawn)
        for obj in scene.objects:
            x1, y1, x2, y2 = obj.box
            inside = drawn[y1:y2, x1:x2]
            # the box's first and last rows and columns each hold a pixel of the object: it is tight
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            covered[y1:y2, x1:x2] = True
        assert not (drawn & ~covered).any()   # nothing is drawn outside the boxes


def test_every_phrase_fits_its_object_and_no_other_and_is_the_shortest_that_does():
    forms = {len(s.phrases[k].split()) - 1 for s in SCENES for k in range(len(s.objects))}
    assert {1, 2} <= forms   # scenes share attributes on purpose: many phrases need more than the shape
    for scene in SCENES:
        for k, phrase in enumerate(scene.phrases):
            words = phrase.removeprefix("the ").split()
            fits = [all(w in o.words.values() for w in words) for o in scene.objects]
            assert fits[k] and sum(fits) == 1, (phrase, scene.objects)
            shorter = [f for f in PHRASE_FORMS if len(f) < len(words)]
            me = scene.objects[k].words
            assert all(sum(all(o.words[a] == me[a] for a in f) for o in scene.objects) > 1 for f in shorter)
    twins = [SceneObject("circle", "red", "small", (0, 0, 9, 9)), SceneObject("circle", "red", "small", (20, 0, 29, 9))]
    with pytest.raises(ValueError, match="twin"):
        referring_phrase(twins, 0)


def test_captions_name_every_object_short_by_colour_and_shape_long_with_size_and_place():
    scene = SCENES[0]
    for obj in scene.objects:
        assert f"a {obj.color} {obj.shape}" in scene.short_caption
        assert f"a {obj.size} {obj.color} {obj.shape} {where(obj.box)}" in scene.long_caption
    assert where((0, 0, 10, 10)) == "at the top left" and where((50, 50, 60, 60)) == "in the centre"
    with pytest.raises(ValueError, match="2 to 5"):
        draw_scene(seeded_rng(0, "x"), n_objects=6)


def test_proposals_stay_on_the_canvas_and_their_iou_with_the_objects_spans_0_to_1():
    best = []
    for i, scene in enumerate(SCENES):
        boxes = np.array([o.box for o in scene.objects], dtype=float)
        props = proposals(boxes, seeded_rng(0, "proposals", str(i)), count=30)
        assert props.shape == (30, 4) and (props >= 0).all() and (props <= SCENE_SIZE).all()
        assert ((props[:, 2:] - props[:, :2]) >= 2).all()
        best.append(box_iou(torch.tensor(props), torch.tensor(boxes)).max(1).values.numpy())
    best = np.concatenate(best)
    assert best.max() > 0.9 and (best < 0.1).mean() > 0.3
    assert ((best > 0.5) & (best < 0.9)).mean() > 0.1 and ((best > 0.2) & (best <= 0.5)).mean() > 0.05
