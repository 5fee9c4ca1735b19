"""Benchmark: the project's own MIEB evaluators against ``mteb.evaluate`` on the same model, task and draw.

    python benchmarks/mieb_vs_mteb.py [--n 192] [--repeats 5]

For each category, ``mteb.evaluate`` runs the tiny Qwen2-VL behind :class:`uniembed.evaluate.mieb.encoder.MtebEncoder`
on the local task (:mod:`uniembed.evaluate.mieb.tasks`), and the project's evaluator
(:mod:`uniembed.evaluate.mieb.scores`) scores the same embedder on the same :class:`WorldDraw`:

* t2i retrieval (nDCG@10): ``WorldT2IRetrieval`` against ``scores.t2i_retrieval`` on ``WorldDraw(seed=0, n=N)``;
* linear probe (accuracy): ``WorldShapeLinearProbe`` against ``scores.linear_probe`` (the tasks' default draws);
* clustering (NMI): ``WorldShapeClustering`` against ``scores.clustering_nmi`` (the tasks' default draw).

Prints both scores and their absolute difference, and the median wall seconds of each over the repeats with the
ratio mteb / own (mteb reports nDCG@10 rounded to 5 decimals, so a retrieval difference up to 5e-6 is that rounding;
the script says so). The model is loaded, the draws' pictures rendered and one encode run before any timing, so
neither side pays them; each side then runs once untimed, and the timed repeats alternate between the two. mteb
runs offline with no result cache, no CO2 tracker and batch size 32 (the project's evaluators' default).
"""
from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

import mteb
from uniembed.data.synthetic.world import corpus
from uniembed.embed.embedder import EmbedItem
from uniembed.evaluate.mieb import scores
from uniembed.evaluate.mieb.encoder import MtebEncoder
from uniembed.evaluate.mieb.tasks import (EXPERIMENTS, SHOTS, WorldShapeClustering, WorldShapeLinearProbe,
                                          WorldT2IRetrieval)
from uniembed.evaluate.mieb.world import T2I_PROMPT, WorldDraw
from uniembed.model.tiny import build_tiny_model


def categories(n: int) -> dict:
    """name -> (a fresh mteb task, its main score, the project's evaluator of the same number)."""
    retrieval = WorldDraw(seed=0, n=n, start=0)
    return {
        "t2i retrieval": (lambda: WorldT2IRetrieval(retrieval), "ndcg_at_10",
                          lambda e, t: scores.t2i_retrieval(e, t.draw)),
        "linear probe": (WorldShapeLinearProbe, "accuracy",
                         lambda e, t: scores.linear_probe(e, t.train, t.draw, SHOTS, EXPERIMENTS)),
        "clustering": (WorldShapeClustering, "nmi", lambda e, t: scores.clustering_nmi(e, t.draw)),
    }


def timed(runs: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """name -> (``runs[name]()``'s value, the same each time; its median wall seconds over ``repeats`` calls). Each
    is run once untimed first (mteb's first call pays one-time costs of its own), then the calls alternate, so load
    from other processes falls on both alike."""
    values = {name: [fn()] for name, fn in runs.items()}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            values[name].append(fn())
            seconds[name].append(time.perf_counter() - start)
    changed = {name: v for name, v in values.items() if len(set(v)) != 1}
    if changed:
        raise SystemExit(f"a score changed between repeats: {changed}")
    return {name: (values[name][0], statistics.median(seconds[name])) for name in runs}


def run_mteb(encoder: MtebEncoder, task, main_score: str) -> float:
    results = mteb.evaluate(encoder, tasks=[task], cache=None, co2_tracker=False, show_progress_bar=False,
                            encode_kwargs={"batch_size": 32})
    return float(results.task_results[0].scores["test"][0][main_score])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=192, help="captions and pictures of the retrieval draw")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    logging.getLogger("mteb").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "model", corpus(0), family_name="qwen2_vl")
        encoder = MtebEncoder.from_pretrained(model, device="cpu")
        embedder = encoder.embedder
        tasks = categories(args.n)
        for make, _, _ in tasks.values():   # render every draw's pictures (cached on the draw) before timing
            task = make()
            for draw in (task.draw, getattr(task, "train", task.draw)):
                draw.images
        warm = tasks["t2i retrieval"][0]().draw
        embedder.encode([EmbedItem(c, instruction=T2I_PROMPT) for c in warm.captions[:8]]
                        + [EmbedItem(None, image=i) for i in warm.images[:8]])   # warm-up
        print(f"tiny Qwen2-VL, 2 threads, batch size 32, median of {args.repeats} alternating runs after an untimed "
              f"one (retrieval draw n={args.n}; linear probe {SHOTS} shots x {EXPERIMENTS} experiments)")
        print(f"{'category':<14} {'score':<10} {'mteb':>10} {'own':>10} {'|diff|':>9} "
              f"{'mteb s':>8} {'own s':>8} {'mteb/own':>9}")
        for name, (make, main_score, ours) in tasks.items():
            got = timed({"mteb": lambda: run_mteb(encoder, make(), main_score),
                         "own": lambda: ours(embedder, make())}, args.repeats)
            (theirs, t_mteb), (own, t_own) = got["mteb"], got["own"]
            print(f"{name:<14} {main_score:<10} {theirs:10.6f} {own:10.6f} {abs(theirs - own):9.1e} "
                  f"{t_mteb:8.2f} {t_own:8.2f} {t_mteb / t_own:9.2f}   (test draw n={make().draw.n})")
            if abs(theirs - own) > 1e-6:
                rounded = round(own, 5)   # mteb rounds retrieval metrics to 5 decimals (retrieval_metrics.py)
                print(f"  {name}: differ by {abs(theirs - own):.2e} > 1e-6; own rounded to 5 decimals as mteb "
                      f"reports it: {rounded:.5f}, |diff| {abs(theirs - rounded):.1e}")


if __name__ == "__main__":
    main()
