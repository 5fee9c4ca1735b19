"""Stage ``pretrain_vision``: give the tiny model's vision tower what a real one brings (CLIP-style pretraining).

    python -m uniembed.stages.pretrain_vision --stage model_dir BUILT_MODEL --stage out_dir VISION_MODEL \
        [--stage role judge_model]

Loads the built tiny Qwen2-VL, trains its vision tower and merger on fresh renderings of the world
against their captions (:mod:`uniembed.vision.pretrain`, ``<role>.vision_pretrain``), checks the frozen
tower with linear probes on held-out renderings (:mod:`uniembed.vision.probe`), and saves the whole model
(language model untouched) with ``save_pretrained`` into ``out_dir``, with ``vision_pretrain.json`` (the
loss curve, the probes' accuracies before and after, the time). Every later stage starts from it with the
tower frozen, as the papers start from a CLIP-initialised Qwen2-VL. A real checkpoint has no
``vision_pretrain`` section and no such stage.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..artifacts import atomic_path, write_json
from ..config import stage_config
from ..model.loading import load_for_generation
from ..model.families import family_of
from ..model.processor import load_processor
from ..model.saving import write_model_files
from ..vision.pretrain import pretrain_tower
from ..vision.probe import probe_accuracies
from ..vision.settings import VisionPretrainSettings
from .common import model_section, require

log = logging.getLogger("uniembed.pretrain_vision")


def run(cfg) -> dict:
    s = cfg.stage
    section = model_section(cfg)
    if section.get("vision_pretrain") is None:
        raise SystemExit(f"{s.role} {section.name!r} has no `vision_pretrain` section: its tower is used as it is")
    require(s, "model_dir", "out_dir")
    settings = VisionPretrainSettings(**OmegaConf.to_container(section.vision_pretrain, resolve=True))
    torch.manual_seed(settings.seed)
    model, processor = load_for_generation(s.model_dir), load_processor(s.model_dir)
    encoder = family_of(model).image_encoder(model, processor.image_processor)
    probes = dict(n_train=settings.probe_train, n_test=settings.probe_test, seed=settings.seed)
    before = probe_accuracies(encoder, **probes)
    log.info("linear probes of the built tower: %s", before)
    trained = pretrain_tower(encoder, settings, progress=s.progress)
    after = probe_accuracies(encoder, **probes)
    log.info("linear probes after %d steps (%.0f s): %s", settings.steps, trained["seconds"], after)
    summary = {"settings": OmegaConf.to_container(section.vision_pretrain, resolve=True), "probe_before": before,
               "probe_after": after, **trained, "built_model": str(s.model_dir)}
    with atomic_path(Path(s.out_dir), directory=True, manifest=True) as tmp:
        write_model_files(model, processor, tmp)
        write_json(summary, tmp / "vision_pretrain.json")
    return summary


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
