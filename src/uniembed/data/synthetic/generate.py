"""Generate the whole shapes dataset in its public formats, plus exact ground truth and a manifest.

``generate_synthetic(root, seed=0)`` writes::

    <root>/mbeir/...                       M-BEIR (UniIR) layout, see ``mbeir.py``
    <root>/mmeb/{train,eval,images}/...    MMEB (VLM2Vec) Parquet rows, see ``mmeb.py``
    <root>/nli/nli_for_simcse.csv          SimCSE NLI triplets, see ``pairs.py``
    <root>/captions/captions.tsv, images/  CC3M-style image-caption pairs
    <root>/zeroshot/...                    the zero-shot split (Karpathy + SugarCrepe formats), see ``zeroshot.py``
    <root>/identity/...                    the identity training split (M-BEIR layout), see ``identity_train.py``
    <root>/objects/...                     multi-object scenes with boxes (ObjEmbed training jsonl, RefCOCO refexp,
                                           SORCE-1K jsonl, proposals), see ``scene_files.py``
    <root>/truth/mbeir_truth.parquet       qid, split, task_id, true_match_dids
    <root>/truth/mmeb_eval_truth.parquet   dataset, row, query_spec, tgt_attrs, is_match
    <root>/manifest.json                   seed, sizes, rows per file (PNGs per image folder)

``true_match_dids`` lists every candidate of the union pool of the query's split (all datasets)
that genuinely matches the query (see ``mbeir.py``), so it includes every unlisted false negative:
the other images a partial caption fits, the query's object in other datasets' pools, second
captions, wiki entries, twins and answers. Every file is written atomically; the same seed and
sizes give byte-identical files.
"""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from ...artifacts import write_json, write_parquet
from .identity_train import write_identity_train
from .mbeir import write_mbeir
from .mmeb import TRUTH_SCHEMA as MMEB_TRUTH_SCHEMA
from .mmeb import write_mmeb
from .pairs import write_captions, write_nli
from .scene_files import write_object_scenes
from .zeroshot import write_zeroshot

DEFAULT_SIZES = {
    "mbeir_train_queries": 240,  # per task
    "mbeir_test_queries": 60,    # per task
    "mbeir_val_queries": 20,     # per task (choosing the recall + rerank fusion weight)
    "mbeir_pool": 200,           # least candidates per (task, split) pool
    "mmeb_train_rows": 200,      # per IND dataset
    "mmeb_eval_rows": 60,        # per dataset
    "mmeb_candidates": 12,       # targets per eval row (positive + distractors)
    "mmeb_gallery": 160,         # rendered images the retrieval rows draw from
    "nli_triplets": 500,
    "caption_pairs": 300,
    "zeroshot_images": 60,       # two-object scenes of the zero-shot split (never in a training file)
    "identity_per_group": 8,     # training identities per look-alike group and meta-task (36 groups, 4 meta-tasks)
    "object_train_scenes": 512,  # multi-object scenes with boxes (ObjEmbed training, objects/)
    "object_eval_scenes": 100,   # their grounding and local-retrieval gallery
}
MBEIR_TRUTH_SCHEMA = pa.schema([("qid", pa.string()), ("split", pa.string()), ("task_id", pa.int32()),
                                ("true_match_dids", pa.list_(pa.string()))])


def resolve_sizes(sizes: dict | None) -> dict[str, int]:
    """``DEFAULT_SIZES`` updated with ``sizes``; unknown names or non-positive values raise ValueError."""
    sizes = dict(sizes or {})
    unknown = sorted(set(sizes) - set(DEFAULT_SIZES))
    if unknown:
        raise ValueError(f"unknown synthetic dataset sizes {unknown}; expected names from {sorted(DEFAULT_SIZES)}")
    resolved = {**DEFAULT_SIZES, **sizes}
    bad = {k: v for k, v in resolved.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1}
    if bad:
        raise ValueError(f"synthetic dataset sizes must be positive integers, got {bad}")
    if resolved["mmeb_gallery"] < resolved["mmeb_candidates"]:
        raise ValueError("mmeb_gallery must be at least mmeb_candidates")
    return resolved


def generate_synthetic(root: str | os.PathLike, *, seed: int = 0, sizes: dict | None = None) -> dict:
    """Write the shapes dataset under ``root``; return the manifest (also written to ``manifest.json``)."""
    root = Path(root)
    s = resolve_sizes(sizes)
    counts: dict[str, int] = {}
    mbeir_counts, mbeir_truth = write_mbeir(root, seed=seed, train_queries=s["mbeir_train_queries"],
                                            test_queries=s["mbeir_test_queries"], val_queries=s["mbeir_val_queries"],
                                            pool_size=s["mbeir_pool"])
    mmeb_counts, mmeb_truth = write_mmeb(root, seed=seed, train_rows=s["mmeb_train_rows"],
                                         eval_rows=s["mmeb_eval_rows"], candidates=s["mmeb_candidates"],
                                         gallery_size=s["mmeb_gallery"])
    counts.update(mbeir_counts)
    counts.update(mmeb_counts)
    counts.update(write_nli(root, seed=seed, rows=s["nli_triplets"]))
    counts.update(write_captions(root, seed=seed, pairs=s["caption_pairs"]))
    counts.update(write_zeroshot(root, seed=seed, images=s["zeroshot_images"]))
    counts.update(write_identity_train(root, seed=seed, per_group=s["identity_per_group"]))
    scenes = write_object_scenes(root / "objects", seed=seed, train_scenes=s["object_train_scenes"],
                                 eval_scenes=s["object_eval_scenes"])
    counts.update({"objects/train.jsonl": scenes["train_scenes"], "objects/refexp_eval.json": scenes["expressions"],
                   "objects/sorce_eval.jsonl": scenes["local_queries"],
                   "objects/images/train/": scenes["train_scenes"], "objects/images/eval/": scenes["eval_scenes"]})
    write_parquet(pa.Table.from_pylist(mbeir_truth, MBEIR_TRUTH_SCHEMA), root / "truth/mbeir_truth.parquet")
    write_parquet(pa.Table.from_pylist(mmeb_truth, MMEB_TRUTH_SCHEMA), root / "truth/mmeb_eval_truth.parquet")
    counts["truth/mbeir_truth.parquet"] = len(mbeir_truth)
    counts["truth/mmeb_eval_truth.parquet"] = len(mmeb_truth)
    manifest = {
        "seed": seed,
        "sizes": s,
        "files": {k: v for k, v in sorted(counts.items()) if not k.endswith("/")},
        "images": {k: v for k, v in sorted(counts.items()) if k.endswith("/") and v},
    }
    write_json(manifest, root / "manifest.json")
    return manifest
