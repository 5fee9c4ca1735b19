"""The hard-negative training stage trains UniME-V2's soft-label objective (eq. 2-4) directly on an
imported UniME-V2 judged file, with the tiny Qwen2-VL, and the judge scores are what it trains on."""
import json
import math
from pathlib import Path

from uniembed.config import compose_config, hydra_quote
from uniembed.interop import import_unime_v2_json
from uniembed.stages import train

from .files import good_records, record, write_json

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "recipe.train_hn.objectives.unime_v2"


def train_on(tmp_path, imported: Path, model, tag: str) -> dict:
    paths = {"model_dir": model, "curated_dir": imported, "hard_negatives": imported / "hard_negatives.parquet",
             "out_dir": tmp_path / tag / "out", "checkpoint_dir": tmp_path / tag / "ckpt", "log_dir": tmp_path / tag / "tb"}
    cfg = compose_config([f"paths.resources={hydra_quote(tmp_path)}", "recipe.device=cpu", "stage.progress=false",
                          "stage.section=train_hn", "stage.name=unime_v2", f"{ENTRY}.source=judged",
                          f"{ENTRY}.max_steps=3", f"{ENTRY}.batch_size=4", f"{ENTRY}.save_every=3",
                          f"{ENTRY}.objective.num_negatives=3",
                          *(f"stage.{k}={hydra_quote(v)}" for k, v in paths.items())], ROOT / "config")
    return train.run(cfg)


def test_soft_label_training_runs_on_the_imported_queries_and_their_scores(tmp_path, tiny_qwen2vl):
    root = tmp_path / "data"
    records = good_records(root, 9)
    records[8]["hard_negatives_scores"] = [1.0, 1.0, 1.0]                      # the paper's random fallback
    bad = record("", "", "an answer", "", 0.5, [("another", "")], [0.25])      # empty query: quarantined
    summary = import_unime_v2_json(write_json(tmp_path / "train.json", records + [bad]), root, tmp_path / "imported",
                                   source="judged")
    assert summary["queries_in"] == 9 and summary["reasons"] == {"empty_text": 1}

    result = train_on(tmp_path, tmp_path / "imported", tiny_qwen2vl, "run")
    saved = json.loads((tmp_path / "run" / "out" / "training_summary.json").read_text())
    assert result["finished"] and result["step"] == 3 and result["objective"] == "soft_label"
    assert saved["source"] == "judged" and saved["num_queries"] == 9 and saved["dropped_queries"] == {}
    assert saved["hard_negative_outcomes"] == {"selected": 8, "fallback_random": 1}
    losses = [h["soft_label_kl"] for h in result["history"]]
    assert len(losses) == 3 and all(math.isfinite(x) and x > 0 for x in losses)

    # the judge's scores are the soft labels: other scores, same data and seed -> another first-step loss
    for r in records:
        r["hard_negatives_scores"] = [0.0] * len(r["hard_negatives"])
        r["query_pos_scores"] = 1.0
    import_unime_v2_json(write_json(tmp_path / "flat.json", records), root, tmp_path / "flat", source="judged")
    flat = train_on(tmp_path, tmp_path / "flat", tiny_qwen2vl, "flat")
    assert flat["num_queries"] == 9 and abs(flat["history"][0]["soft_label_kl"] - losses[0]) > 1e-6
