"""Real sizes without weights: every published configuration in config/model/ built on the meta device.

Parameter counts against the model cards' (``published_parameters``), LoRA on exactly the decoder's seven
projections at full depth (counted, and the trainable count against a formula from the sizes), the vision
tower frozen. A 7B recipe's mistakes (a wrong family, a LoRA pattern that misses a layer or catches the
tower) fail here, on a laptop, instead of after a day in a SLURM queue.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from uniembed.model.families import family
from uniembed.train.lora import apply_lora
from uniembed.train.settings import LoraSettings

CONFIGS = sorted(p for p in Path("config/model").glob("*.yaml") if "architecture" in yaml.safe_load(p.read_text()))
RANK = 16   # UniME-V2 §4.1's LoRA rank


def _meta_model(section: dict):
    chosen = family(section["family"])
    architecture = section["architecture"]
    config = chosen.config_class(**architecture)
    with torch.device("meta"):
        return chosen, config, chosen.model_class(config)


def _lora_parameters(text: dict, rank: int) -> int:
    """r * (in + out) summed over q, k, v, o, gate, up, down of every decoder layer."""
    h, inter = text["hidden_size"], text["intermediate_size"]
    head = text.get("head_dim") or h // text["num_attention_heads"]
    q, kv = text["num_attention_heads"] * head, text["num_key_value_heads"] * head
    per_layer = (h + q) + 2 * (h + kv) + (q + h) + 2 * (h + inter) + (inter + h)
    return rank * per_layer * text["num_hidden_layers"]


def test_every_family_has_a_published_configuration():
    from uniembed.model.families import families

    assert {yaml.safe_load(p.read_text())["family"] for p in CONFIGS} == set(families())


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_published_configuration_at_real_size(path):
    section = yaml.safe_load(path.read_text())
    chosen, config, model = _meta_model(section)
    assert config.model_type == section["family"]
    total = sum(p.numel() for p in model.parameters())
    assert total == pytest.approx(section["published_parameters"], rel=5e-3), f"{section['name']}: {total:,}"

    wrapped = apply_lora(model, LoraSettings(r=RANK, alpha=2 * RANK))
    text = section["architecture"]["text_config"]
    wrapped_modules = {n.rsplit(".lora_A", 1)[0] for n, _ in wrapped.named_parameters() if ".lora_A." in n}
    assert len(wrapped_modules) == 7 * text["num_hidden_layers"]
    assert all(".language_model.layers." in n for n in wrapped_modules)
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    assert trainable == _lora_parameters(text, RANK)
    frozen = set(chosen.frozen_parameters(wrapped))
    tower = [p for n, p in wrapped.get_base_model().named_parameters() if n in frozen]
    assert sum(p.numel() for p in tower) > 3e8 and not any(p.requires_grad for p in tower)


@pytest.mark.slow
def test_a_real_size_2b_lora_step_and_judge_forward_run_on_cpu_from_random_weights():
    """Qwen2-VL-2B at its published sizes from random weights, in bfloat16 as on a GPU (float32 peaks at 20 GiB, more
    than a 24 GiB CI machine spares beside the other tests): one LoRA r16 step with activation checkpointing through
    the embedder on 2 text queries + 2 image+text candidates at 336 px (UniME-V2 §4.1), and the judge's one forward
    on 2 pairs (benchmarks/real_size_step.py, each phase a fresh process; its peak RSS printed and bounded)."""
    import json
    import subprocess
    import sys

    section = yaml.safe_load(Path("config/model/qwen2vl_2b.yaml").read_text())
    done = subprocess.run([sys.executable, "benchmarks/real_size_step.py", "--config", "config/model/qwen2vl_2b.yaml",
                           "--batch", "2", "--dtype", "bfloat16", "--json"], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    train, judge = found["train"], found["judge"]
    print(f"\nQwen2-VL-2B bf16: LoRA step {train['step_s']:.0f} s, peak {train['peak_gib']:.1f} GiB; "
          f"judge forward {judge['step_s']:.0f} s, peak {judge['peak_gib']:.1f} GiB")
    assert train["parameters"] == pytest.approx(section["published_parameters"], rel=5e-3)
    assert train["trainable"] == _lora_parameters(section["architecture"]["text_config"], RANK)
    assert train["lora_with_grad"] == 2 * 7 * section["architecture"]["text_config"]["num_hidden_layers"]
    assert train["lora_grad_norm"] > 0 and train["tower_trainable"] == 0 and np.isfinite(train["loss"])
    assert all(0 < s < 1 for s in judge["scores"])
    assert train["peak_gib"] < 14 and judge["peak_gib"] < 14
