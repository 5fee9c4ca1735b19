"""Stage ``instruct``: make the embedded default's tiny instruct MLLM (design.md §5).

    python -m uniembed.stages.instruct [--config-dir config] --stage model_dir BUILT_MODEL \\
        --stage curated_dir results/<run>/curated --stage out_dir results/<run>/models/instruct \\
        --stage checkpoint_dir DIR --stage log_dir DIR

Real runs start from an instruction-following MLLM (Qwen2-VL-7B-Instruct; ``model.instruct``
is null and this stage is not in the DAG). The embedded default builds a random tiny Qwen2-VL,
and this stage trains all of it with next-token cross-entropy on chat examples made from the
TRAIN split of the curated sources ``model.instruct.sources`` (:mod:`uniembed.instruct.data`:
captions, VQA answers, and the judge's own Yes/No prompt), so that every later stage loads an
instruct model and the judge (``recipe.judge.model: null``) has real signal. Writes
``out_dir/model`` (``save_pretrained`` model + processor + companion files) and
``out_dir/training_summary.json``; a rerun of a killed job resumes from ``checkpoint_dir``.
"""
from __future__ import annotations

import logging
import sys

from omegaconf import OmegaConf

from ..config import stage_config
from ..instruct.settings import InstructSettings
from ..instruct.train import train_instruct
from .common import require

log = logging.getLogger("uniembed.instruct")


def run(cfg) -> dict:
    s = cfg.stage
    if OmegaConf.select(cfg, "model.instruct") is None:
        raise SystemExit(f"model {cfg.model.name!r} has no `instruct` section (config/model/{cfg.model.name}.yaml): "
                         "nothing to train; its checkpoint is used as it is")
    require(s, "model_dir", "curated_dir", "out_dir", "checkpoint_dir", "log_dir")
    try:
        settings = InstructSettings(**OmegaConf.to_container(cfg.model.instruct, resolve=True))
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"model.instruct: {exc}") from None
    unknown = [source for source in settings.sources if source not in cfg.data.sources]
    if unknown:
        raise SystemExit(f"model.instruct.sources names {unknown}, not sources of data {cfg.data.name!r} "
                         f"(has {sorted(cfg.data.sources)})")
    log.info("instruct from %s on the train split of %s: %s", s.model_dir, settings.sources, settings)
    summary = train_instruct(settings, base_model=s.model_dir, curated_dir=s.curated_dir, out_dir=s.out_dir,
                             checkpoint_dir=s.checkpoint_dir, log_dir=s.log_dir, device=cfg.recipe.device,
                             progress=s.progress)
    last = summary["history"][-1]
    log.info("instruct done: %d steps (%.2f epochs of %d examples), final loss %.4f -> %s/model", summary["step"],
             summary["epochs"], summary["examples_per_epoch"], last["loss"], s.out_dir)
    return summary


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
