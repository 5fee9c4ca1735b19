"""Stage ``instruct``: make the embedded default's tiny instruct MLLM, the judge (docs/hard-negatives.md, the judge's model).

    python -m uniembed.stages.instruct [--config-dir config] --stage role judge_model \\
        --stage model_dir VISION_MODEL --stage out_dir resources/models/tiny-judge-instruct \\
        --stage checkpoint_dir DIR --stage log_dir DIR [--stage loader_workers N]

Real runs judge with an instruction-following MLLM (UniME-V2: Qwen2.5-VL-7B; ``judge_model.instruct``
is null and this stage is not in the DAG). The embedded default builds a tiny Qwen2-VL for the judge,
pretrains its tower, and this stage trains it with next-token cross-entropy on chat examples made from
the TRAIN split of the sources ``<role>.instruct.sources`` (:mod:`uniembed.instruct.data`: the judge's
own Yes/No prompt, captions, VQA answers), so the judge (``recipe.judge.model: null``) and the
rerankers started from it have real signal. It is a resource, like the model it starts from: it
curates those sources itself (the curate stage's code, into a temporary directory) from the world's
files, so it reads no run's data and every run reuses it. Writes ``out_dir/model`` (``save_pretrained``
model + processor + companion files) and ``out_dir/training_summary.json``; a rerun of a killed job
resumes from ``checkpoint_dir``. ``loader_workers`` (default 0) processes prepare the steps' batches (prompts,
images, processor: a third of a step on CPU) beside the step; the weights are the same for any count.
"""
from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from ..config import stage_config
from ..data.loader import LoaderSettings
from ..instruct.settings import InstructSettings
from ..instruct.train import train_instruct
from .common import model_section, require
from .curate import curate_source

log = logging.getLogger("uniembed.instruct")


def run(cfg) -> dict:
    s = cfg.stage
    section = model_section(cfg)
    if section.get("instruct") is None:
        raise SystemExit(f"{s.role} {section.name!r} has no `instruct` section: nothing to train; its checkpoint "
                         "is used as it is")
    require(s, "model_dir", "out_dir", "checkpoint_dir", "log_dir")
    try:
        settings = InstructSettings(**OmegaConf.to_container(section.instruct, resolve=True))
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"{s.role}.instruct: {exc}") from None
    unknown = [source for source in settings.sources if source not in cfg.data.sources]
    if unknown:
        raise SystemExit(f"{s.role}.instruct.sources names {unknown}, not sources of data {cfg.data.name!r} "
                         f"(has {sorted(cfg.data.sources)})")
    log.info("instruct from %s on the train split of %s: %s", s.model_dir, settings.sources, settings)
    with tempfile.TemporaryDirectory(prefix="instruct-curated-") as curated:
        for source in settings.sources:
            curate_source(cfg, source, Path(curated) / source, progress=s.progress)
        summary = train_instruct(settings, base_model=s.model_dir, curated_dir=curated, out_dir=s.out_dir,
                                 checkpoint_dir=s.checkpoint_dir, log_dir=s.log_dir, device=cfg.recipe.device,
                                 progress=s.progress, loader=LoaderSettings(workers=int(s.loader_workers)))
    if summary["finished"]:
        last = summary["history"][-1]
        log.info("instruct done: %d steps (%.2f epochs of %d examples), final loss %.4f -> %s/model",
                 summary["step"], summary["epochs"], summary["examples_per_epoch"], last["loss"], s.out_dir)
    return summary


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
