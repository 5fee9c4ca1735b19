"""The MIEB-style evaluation of a model (the evaluate_mieb stage): its rows, MIEB Table 2's means over tasks, the
table's layout, the headline number; the stage on the tiny model."""
from pathlib import Path

import numpy as np
import pytest

from uniembed.artifacts import read_parquet
from uniembed.config import compose_config
from uniembed.evaluate.ablation import headline
from uniembed.evaluate.mieb.summary import CATEGORIES, mieb_summary
from uniembed.evaluate.results import SCORES
from uniembed.evaluate.tables import mieb_table, render_tables

ROOT = Path(__file__).resolve().parents[2]


def _rows(tag, values):
    """Rows as the suite writes them: (category, task, value)."""
    return [{"tag": tag, "benchmark": "mieb", "setting": c, "dataset": d, "task_id": None, "meta_task": None,
             "metric": "m", "value": v, "n_queries": 96} for c, d, v in values]


ROWS = _rows("a", [("Rtrv.", "r", 40.0), ("Cmp.", "c1", 50.0), ("Cmp.", "c2", 70.0), ("vSTS (en)", "s", -10.0)])


def test_categories_average_their_tasks_and_the_mean_is_over_tasks():
    summary = mieb_summary(ROWS)
    assert summary["Cmp."] == (60.0, 2) and summary["Rtrv."] == (40.0, 1)
    assert summary["Mean (en)"] == (pytest.approx(np.mean([40, 50, 70, -10])), 4)   # not the mean of categories
    assert "Doc." not in summary and "LP." not in summary
    assert headline(ROWS)["MIEB mean"] == pytest.approx(37.5)


def test_the_table_has_miebs_columns_and_dashes_where_a_category_has_no_task():
    table = mieb_table(ROWS + _rows("b", [("Rtrv.", "r", 45.0)]))
    header, _, row_a, row_b = table.strip().splitlines()[-4:]
    counts = (1, 0, 0, 0, 2, 0, 0, 1)
    assert header.strip("| ").split(" | ")[1:] == [f"{c} ({n})" for c, n in zip(CATEGORIES, counts)] + ["Mean (en) (4)"]
    assert row_a.split(" | ")[1:3] == ["40.0", "–"] and row_a.split(" | ")[5] == "60.0" and row_a.endswith("37.5 |")
    assert row_b.endswith("45.0 |")
    assert "MIEB Table 2 layout" in render_tables(ROWS, "markdown", "t")


def test_each_distinct_list_of_items_is_embedded_once_and_images_are_told_apart_by_identity():
    from PIL import Image

    from uniembed.embed.embedder import EmbedItem
    from uniembed.evaluate.mieb.suite import EncodeOnce

    calls = []

    class Counting:
        def encode(self, items, batch_size=32):
            calls.append(len(items))
            return np.arange(len(items) * 2.0).reshape(len(items), 2) + len(calls)

    red, blue = Image.new("RGB", (4, 4), "red"), Image.new("RGB", (4, 4), "blue")
    once = EncodeOnce(Counting())
    first = once.encode([EmbedItem(None, image=red), EmbedItem("x")])
    assert once.encode([EmbedItem(None, image=red), EmbedItem("x")]) is first and calls == [2]
    once.encode([EmbedItem(None, image=blue), EmbedItem("x")])       # equal EmbedItems, another picture
    once.encode([EmbedItem(None, image=red), EmbedItem("x", instruction="i")])
    assert calls == [2, 2, 2]


def test_the_stage_scores_every_task_of_the_world(tiny_qwen2vl, tmp_path):
    pytest.importorskip("sklearn")   # the mieb extra (installed by scripts/setup_env.sh): never skipped in CI
    from uniembed.evaluate.mieb.suite import WORLD_TASKS
    from uniembed.stages import evaluate_world

    cfg = compose_config([f"paths.resources={tmp_path}", "stage.suite=mieb", "stage.tag=zero_shot", f"stage.model_dir={tiny_qwen2vl}",
                          f"stage.out_dir={tmp_path / 'eval'}", "recipe.device=cpu"], ROOT / "config")
    rows = evaluate_world.run(cfg)
    written = read_parquet(tmp_path / "eval" / "mieb.parquet", SCORES).to_pylist()
    assert written == [dict(r) for r in rows]
    assert [r["dataset"] for r in rows] == [t.name for t in WORLD_TASKS]
    assert {r["setting"] for r in rows} == set(CATEGORIES) - {"Doc."}
    assert all(-100.0 <= r["value"] <= 100.0 for r in rows)
    assert all(0.0 <= r["value"] for r in rows if r["setting"] != "vSTS (en)")   # only a correlation is signed
    table = (tmp_path / "eval" / "mieb.md").read_text()
    assert "MIEB Table 2 layout" in table and "UniembedWorldVisualSTS" in table
