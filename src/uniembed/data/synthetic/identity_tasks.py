"""VisME's four identity meta-tasks (supplement Table 6, examples in Tables 8-11) on the world's identities.

Queries are instruction + image, targets images, as in VisME:

* **recognition**: a plain picture of an identity -> its other renderings (moved, scaled, tinted, on another
  background);
* **re-identification**: an occluded picture -> every other rendering of the identity in the gallery, 1 to 14 of
  them (VisME's several targets per query);
* **grounding**: a scene of two identities of different groups + the text "the <colour> <shape>" -> that
  identity's plain picture;
* **editing**: a plain picture + the text "painted <colour>" -> that identity's edited picture (its look-alikes
  edited the same way are in the pool: only the mark tells them apart).

As in M-BEIR's (image, text) -> image tasks (CIRR, FashionIQ), the instruction is the meta-task's own and the text
carries what varies per query, so the identity training split (:mod:`.identity_train`, M-BEIR layout) asks exactly
as the evaluation does.

Every pool holds every identity's pictures of the split, so each query's look-alikes (same shape, colour and size,
another mark) are among its distractors. :class:`IdentityTask` keeps the exact truth: which identity each picture
shows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from .identity import Identity, draw_identities, render_identity
from .world import COLORS, IMAGE_SIZE, seeded_rng

META_TASKS = ("recognition", "reidentification", "grounding", "editing")
INSTRUCTIONS = {
    "recognition": "Find other pictures of this exact object.",
    "reidentification": "Find every other picture of this same object.",
    "grounding": "Find the object the text names in this picture, shown on its own.",
    "editing": "Find this same object with the change the text describes.",
}
QUERY_TEXTS = {"grounding": "the {color} {shape}", "editing": "painted {color}"}
RECOGNITION_VIEWS = ("shifted", "scaled", "tinted", "background")
REID_TARGETS = (1, 14)   # VisME: 1 to 14 targets per re-identification query


@dataclass
class IdentityTask:
    """One meta-task: its queries (image + instruction, positives) and its gallery, with which identity each shows."""
    name: str
    queries: list[dict] = field(default_factory=list)     # query_id, image, instruction, text, identity_id, positives
    gallery: dict[str, Image.Image] = field(default_factory=dict)
    shows: dict[str, str] = field(default_factory=dict)   # gallery id -> identity id


def _add(task: IdentityTask, picture_id: str, image: Image.Image, identity: Identity) -> str:
    task.gallery[picture_id], task.shows[picture_id] = image, identity.identity_id
    return picture_id


def _other_color(identity: Identity, rng) -> str:
    colors = [c for c in COLORS if c != identity.color]
    return colors[int(rng.integers(len(colors)))]


def _renderings(name: str, identities: list[Identity], seed: int, query_view: str, views_of) -> IdentityTask:
    """A query in ``query_view`` per identity, its targets the renderings in ``views_of(rng)``."""
    task, rng = IdentityTask(name), seeded_rng(seed, "identity", name)
    for ident in identities:
        positives = [_add(task, f"{ident.identity_id}:{name}{k}-{view}", render_identity(ident, view, rng), ident)
                     for k, view in enumerate(views_of(rng))]
        task.queries.append({"query_id": f"{name}:{ident.identity_id}", "image": render_identity(ident, query_view, rng),
                             "instruction": INSTRUCTIONS[name], "text": None, "identity_id": ident.identity_id,
                             "positives": positives})
    return task


def recognition(identities: list[Identity], seed: int) -> IdentityTask:
    return _renderings("recognition", identities, seed, "plain", lambda rng: RECOGNITION_VIEWS)


def reidentification(identities: list[Identity], seed: int) -> IdentityTask:
    views, (low, high) = (*RECOGNITION_VIEWS, "plain"), REID_TARGETS
    return _renderings("reidentification", identities, seed, "occluded",
                       lambda rng: [views[k % len(views)] for k in range(int(rng.integers(low, high + 1)))])


def grounding(identities: list[Identity], seed: int) -> IdentityTask:
    """Each identity is found in a scene beside an identity of another group (left and right halves)."""
    task, rng = IdentityTask("grounding"), seeded_rng(seed, "identity", "grounding")
    for ident in identities:
        _add(task, f"{ident.identity_id}:plain", render_identity(ident, "plain", rng), ident)
    for ident in identities:
        others = [o for o in identities if o.group != ident.group]
        if not others:
            raise ValueError("grounding needs identities of at least two look-alike groups")
        other = others[int(rng.integers(len(others)))]
        scene = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (int(rng.integers(25, 66)),) * 3)
        left = bool(rng.integers(2))
        for who, x in ((ident, 14 if left else 42), (other, 42 if left else 14)):
            render_identity(who, "plain", rng, canvas=scene, at=(x, IMAGE_SIZE / 2))
        task.queries.append({"query_id": f"grd:{ident.identity_id}", "image": scene,
                             "instruction": INSTRUCTIONS["grounding"],
                             "text": QUERY_TEXTS["grounding"].format(color=ident.color, shape=ident.shape),
                             "identity_id": ident.identity_id, "positives": [f"{ident.identity_id}:plain"]})
    return task


def editing(identities: list[Identity], seed: int) -> IdentityTask:
    """Each identity's edit colour is shared by its whole look-alike group, so the edited look-alikes are in the pool."""
    task, rng = IdentityTask("editing"), seeded_rng(seed, "identity", "editing")
    group_color: dict[tuple[str, str], str] = {}
    for ident in identities:
        color = group_color.setdefault(ident.group, _other_color(ident, rng))
        target = _add(task, f"{ident.identity_id}:edited-{color}",
                      render_identity(ident, "edited", rng, edit_color=color), ident)
        task.queries.append({"query_id": f"edit:{ident.identity_id}", "image": render_identity(ident, "plain", rng),
                             "instruction": INSTRUCTIONS["editing"], "text": QUERY_TEXTS["editing"].format(color=color),
                             "identity_id": ident.identity_id, "positives": [target]})
    return task


BUILDERS = {"recognition": recognition, "reidentification": reidentification, "grounding": grounding,
            "editing": editing}


#: The identities the evaluation reads (never a training split's): 6 look-alike groups of 8.
EVAL_IDENTITIES = {"seed": 1, "groups": 6, "per_group": 8}
#: The identities of the t-SNE (VisME Figure 7), also never trained on: 5 groups of 8.
SAMPLE_IDENTITIES = {"seed": 2, "groups": 5, "per_group": 8}


def held_out_keys() -> set[tuple]:
    """:attr:`Identity.key` of every identity the evaluation and the t-SNE show (the training split draws none)."""
    return {ident.key for draw in (EVAL_IDENTITIES, SAMPLE_IDENTITIES) for ident in draw_identities(**draw)}


def build_tasks(seed: int = EVAL_IDENTITIES["seed"], groups: int = EVAL_IDENTITIES["groups"],
                per_group: int = EVAL_IDENTITIES["per_group"]) -> dict[str, IdentityTask]:
    """The four meta-tasks over one draw of identities."""
    identities = draw_identities(seed, groups, per_group)
    return {name: build(identities, seed) for name, build in BUILDERS.items()}


def identity_samples(seed: int = SAMPLE_IDENTITIES["seed"], groups: int = SAMPLE_IDENTITIES["groups"],
                     per_group: int = SAMPLE_IDENTITIES["per_group"], renderings: int = 10
                     ) -> tuple[list[Image.Image], list[str]]:
    """``renderings`` pictures of each of ``groups x per_group`` identities in views drawn from every view but the
    edit (VisME Figure 7: 80 identities x 10 samples), and which identity each shows."""
    rng = seeded_rng(seed, "identity", "samples")
    views = (*RECOGNITION_VIEWS, "plain", "occluded")
    images, labels = [], []
    for ident in draw_identities(seed, groups, per_group):
        for _ in range(renderings):
            images.append(render_identity(ident, views[int(rng.integers(len(views)))], rng))
            labels.append(ident.identity_id)
    return images, labels
