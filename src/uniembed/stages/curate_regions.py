"""Stage ``curate_regions``: one region set of ``data.regions`` (ObjEmbed, seed 002) read from its public formats into
the canonical region tables.

    python -m uniembed.stages.curate_regions --stage name objects --stage out_dir results/<run>/regions/objects

Writes ``out_dir/train/`` (``images.parquet``: each training image with its proposals and captions, image paths
joined to the set's root; ``objects.parquet``: its labelled boxes, ``kind`` = ``phrase`` for a referring phrase,
``category`` for a detection label; ``quarantine.parquet``) from every training file of the set (ObjEmbed's jsonl +
``proposals.json``; the files of one set label the same images, so their objects are merged per image), and
``out_dir/eval/`` from the grounding file (MDETR refexp: ``objects.parquet``, one row per expression) and the
local-retrieval file (SORCE-1K: ``local_queries.parquet``), with ``images.parquet``: every image the grounding, the
local- or the global-retrieval file names, with its proposals, its short and long captions where the global-retrieval
file (ObjEmbed's jsonl) gives them, and ``local_gallery`` for the local-retrieval file's own images (its gallery, as
SORCE-1K's: the images its queries name). Global retrieval's gallery is the captioned images. More than
:data:`MAX_QUARANTINED` of a file's records quarantined (or kept with a quarantined part) fails the stage.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ..artifacts import write_json
from ..config import stage_config
from ..data.readers.region_tables import write_region_tables
from ..data.readers.regions import RegionChecks, load_proposals, read_objembed_train, read_refexp, read_sorce
from .common import require

log = logging.getLogger("uniembed.curate_regions")
MAX_QUARANTINED = 0.05


def _merge_training(root: Path, spec: dict) -> tuple[list[dict], list[dict]]:
    images: dict[str, dict] = {}
    quarantine: list[dict] = []
    for entry in spec.get("train") or []:
        records, bad = read_objembed_train(root / entry["file"], root / spec["proposals"], root)
        _check_share(entry["file"], len(records), bad)
        quarantine += bad
        for record in records:
            kept = images.setdefault(record["image_id"], {**record, "objects": []})
            kept["objects"] += [{**o, "object_id": f"{entry['labels']}:{o['object_id']}", "kind": entry["labels"]}
                                for o in record["objects"]]
    return list(images.values()), quarantine


def _gallery(root: Path, spec: dict, image_ids: list[str]) -> tuple[list[dict], list[dict]]:
    """Eval images with their proposals (checked as the training reader checks them)."""
    checks, proposals, images = RegionChecks(root), load_proposals(root / spec["proposals"]), []
    for image_id in dict.fromkeys(image_ids):
        found = checks.image(root / spec["proposals"], image_id, "image", image_id, None)
        if found is None:
            continue
        fitted = checks.proposals(root / spec["proposals"], image_id, proposals.get(image_id, []), found[1])
        if not fitted:
            checks.reject(root / spec["proposals"], image_id, "image", "no_proposals", f"no valid proposal for {image_id!r}")
            continue
        images.append({"image_id": image_id, "image_path": image_id, "width": found[1][0], "height": found[1][1],
                       "short_caption": None, "long_caption": None, "proposals": fitted})
    return images, checks.quarantine


def _check_share(name: str, kept: int, quarantined: list[dict]) -> None:
    """Fail when more than MAX_QUARANTINED of the records of file ``name`` lost anything: a row whose record is a
    whole record (a line, an entry, an image) rejected it, a row of a part of one (``3:objects[1]``, a proposal
    ``[i]`` of an image) only damaged it, and the record was kept."""
    rows = [q for q in quarantined if Path(q["file"]).name == Path(name).name]
    whole = {q["record"] for q in rows if ":" not in q["record"] and not q["key"].startswith("[")}
    damaged = {q["record"].split(":")[0] for q in rows} - whole
    total = kept + len(whole)
    if total and (len(whole) + len(damaged)) / total > MAX_QUARANTINED:
        raise SystemExit(f"{name}: {len(whole)} of {total} records quarantined and {len(damaged)} kept with a "
                         f"quarantined part (more than {MAX_QUARANTINED:.0%} in all); first: {rows[0]}")


def _rooted(rows: list[dict], root: Path) -> list[dict]:
    return [{**row, "image_path": str(root / row["image_path"])} for row in rows]


def run(cfg) -> dict:
    s = cfg.stage
    require(s, "name", "out_dir")
    regions = cfg.data.get("regions")
    regions = OmegaConf.to_container(regions, resolve=True) if regions else {}
    if s.name not in regions:
        raise SystemExit(f"stage.name must be a region set of data.regions ({sorted(regions)}), got {s.name!r}")
    spec, out = regions[s.name], Path(s.out_dir)
    root = Path(spec["root"])
    train, train_bad = _merge_training(root, spec)
    counts = {"train": write_region_tables(out / "train", images=_rooted(train, root), objects=train,
                                           quarantine=train_bad)}
    expressions, queries, bad = [], [], []
    if spec.get("grounding"):
        expressions, bad_g = read_refexp(root / spec["grounding"], root)
        _check_share(spec["grounding"], len(expressions), bad_g)
        bad += bad_g
    if spec.get("local_retrieval"):
        queries, bad_l = read_sorce(root / spec["local_retrieval"], root)
        _check_share(spec["local_retrieval"], len(queries), bad_l)
        bad += bad_l
    captions: dict[str, tuple[str, str]] = {}
    if spec.get("global_retrieval"):
        captioned, bad_c = read_objembed_train(root / spec["global_retrieval"], root / spec["proposals"], root)
        _check_share(spec["global_retrieval"], len(captioned), bad_c)
        bad += bad_c
        captions = {r["image_id"]: (r["short_caption"], r["long_caption"]) for r in captioned}
    local_ids = {q["image_id"] for q in queries}
    gallery, bad_p = _gallery(root, spec, [e["image_id"] for e in expressions] + [q["image_id"] for q in queries]
                              + list(captions))
    gallery = [{**g, **dict(zip(("short_caption", "long_caption"), captions.get(g["image_id"], (None, None)))),
                "local_gallery": g["image_id"] in local_ids} for g in gallery]
    _check_share(spec["proposals"], len(gallery), bad_p)
    known = {image["image_id"] for image in gallery}
    for kind, rows, record, file in (("expression", expressions, lambda r: str(r["expression_id"]), spec.get("grounding")),
                                     ("query", queries, lambda r: r["query_id"].rsplit(":", 1)[-1],   # its line
                                      spec.get("local_retrieval"))):
        bad += [{"file": str(root / file), "record": record(r), "key": "image", "reason": "image_quarantined",
                 "value": f"the {kind}'s image {r['image_id']!r} was quarantined"} for r in rows
                if r["image_id"] not in known]
    for file, rows in ((spec.get("grounding"), expressions), (spec.get("local_retrieval"), queries)):
        if file:
            _check_share(file, sum(r["image_id"] in known for r in rows), bad)
    counts["eval"] = write_region_tables(
        out / "eval", images=_rooted(gallery, root),
        objects=[{**e, "kind": "phrase"} for e in expressions if e["image_id"] in known],
        queries=[q for q in queries if q["image_id"] in known], quarantine=bad + bad_p)
    write_json(counts, out / "summary.json")
    log.info("region set %s: %s", s.name, counts)
    return counts


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
