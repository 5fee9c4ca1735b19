"""Ablation tables: every seed's headline numbers, mean ± sample sd, UniME-V2 Table 4 / Table 6 layouts."""
import statistics

import pytest

from uniembed.evaluate.ablation import ablation_table, ablation_tag, collect, headline, mean_sd, parse_tag


def rows(tag, local, global_, mmeb):
    out = [{"tag": tag, "benchmark": "mbeir", "setting": s, "dataset": d, "task_id": t, "meta_task": None,
            "metric": "Recall@5", "value": v, "n_queries": 10}
           for s, values in (("local", local), ("global", global_)) for (t, d), v in zip([(0, "A"), (3, "B")], values)]
    out += [{"tag": tag, "benchmark": "mmeb", "setting": g, "dataset": d, "task_id": None, "meta_task": m,
             "metric": "P@1", "value": v, "n_queries": 10}
            for (d, m, g), v in zip([("C", "Classification", "IND"), ("V", "VQA", "OOD")], mmeb)]
    return out


def test_tags_round_trip_with_underscores_and_dashes_in_names():
    assert parse_tag(ablation_tag("unime_v2", "no_hard_negatives", 2)) == ("unime_v2", "no_hard_negatives", 2)


def test_headline_numbers_are_macro_averages():
    assert headline(rows("x-a-s0", [10, 30], [0, 20], [40, 60])) == {"MMEB overall": 50.0, "M-BEIR local": 20.0,
                                                                     "M-BEIR global": 10.0}


def test_mean_and_sample_sd_over_seeds_in_the_table_4_layout():
    data = rows("s-base-s0", [10, 30], [0, 20], [40, 60]) + rows("s-base-s1", [20, 40], [10, 30], [50, 70]) \
        + rows("s-soft-s0", [30, 50], [20, 40], [60, 80]) + rows("s-soft-s1", [36, 50], [20, 40], [60, 80])
    values = collect(data)
    assert values["base"]["M-BEIR local"] == [20.0, 30.0]
    assert mean_sd(values["soft"]["M-BEIR local"]) == pytest.approx((41.5, statistics.stdev([40.0, 43.0])))
    settings = {"base": {"objective": {"name": "info_nce", "num_negatives": 0}},
                "soft": {"objective": {"name": "soft_label", "num_negatives": 8}}}
    table = ablation_table(["base", "soft"], settings, values)
    assert "| Variant | Hard negatives | Soft scores | MMEB overall | M-BEIR local | M-BEIR global |" in table
    assert "| base | ✗ | ✗ | 55.0 ± 7.1 | 25.0 ± 7.1 | 15.0 ± 7.1 |" in table
    assert "| soft | ✓ | ✓ | 70.0 ± 0.0 | 41.5 ± 2.1 | 30.0 ± 0.0 |" in table


def test_variants_of_one_objective_get_the_table_6_layout():
    data = rows("s-k4-s0", [10, 30], [0, 20], [40, 60]) + rows("s-k8-s0", [20, 40], [10, 30], [50, 70])
    settings = {v: {"objective": {"name": "soft_label", "num_negatives": k}} for v, k in (("k4", 4), ("k8", 8))}
    table = ablation_table(["k4", "k8"], settings, collect(data))
    assert "| Variant | #Negatives | MMEB overall |" in table and "| k8 | 8 | 60.0 ± 0.0 |" in table


def test_a_stage_chain_gets_the_table_13_layout_and_settings_of_each_kind():
    from uniembed.train.settings import ablation_entry, variant_kind

    recipe = {"train_hn": {"objectives": {"umarvel": {"source": "mbeir", "negatives": "umarvel", "max_steps": 60,
                                                      "objective": {"name": "info_nce", "num_negatives": 5}}}},
              "distill": {"train": {"source": "mbeir", "max_steps": 30, "objective": {"name": "distill", "num_negatives": 9}}},
              "ablations": {"umarvel": {"seeds": [0, 1], "variants": {
                  "progressive": {"model": "pretrain_mbeir"}, "hard_negatives": {"base": "umarvel"},
                  "distillation": {"distill_from": "hard_negatives", "max_steps": 10}}}}}
    kinds = {v: variant_kind(spec) for v, spec in recipe["ablations"]["umarvel"]["variants"].items()}
    assert kinds == {"progressive": "model", "hard_negatives": "train_hn", "distillation": "distill"}
    assert ablation_entry(recipe, "umarvel", "progressive") is None
    assert ablation_entry(recipe, "umarvel", "hard_negatives")["negatives"] == "umarvel"
    distill = ablation_entry(recipe, "umarvel", "distillation")
    assert distill["objective"]["name"] == "distill" and distill["max_steps"] == 10 and "distill_from" not in distill

    values = {"progressive": {"M-BEIR local": [50.0, 50.0]}, "hard_negatives": {"M-BEIR local": [51.0, 53.0]},
              "distillation": {"M-BEIR local": [52.0, 52.0]}}
    stages = {"progressive": "start", "hard_negatives": "+ hard negatives", "distillation": "+ distillation"}
    table = ablation_table(list(values), {}, values, stages=stages)
    assert "| Variant | Stage | M-BEIR local |" in table
    assert "| hard_negatives | + hard negatives | 52.0 ± 1.4 |" in table and "| progressive | start | 50.0 ± 0.0 |" in table
