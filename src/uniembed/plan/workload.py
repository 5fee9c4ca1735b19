"""What each heavy job of a run does to a model: how many sequences, how long, how many FLOPs.

One :class:`Job` per Snakemake job of the DAG that runs a model (the progressive transition's stages, mining,
the judge, hard-negative training, the rerankers, recall + rerank, the distillation teacher table and
training, each model's evaluation), read from the recipe the way the workflow reads it
(:func:`uniembed.workflow_checks.run_model_tags`). Sequence lengths are the sources' mean text tokens plus a
prompt template, plus each image's decoder tokens (:meth:`ModelCost.image_tokens`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..train.objectives.rerank import PairListSettings
from ..workflow_checks import run_model_tags
from .model_cost import ModelCost
from .sizes import SourceSizes

#: tokens an embedding prompt adds to its text (chat template, system turn, the instruction's frame)
EMBED_TEMPLATE = 20
#: tokens the judge's / a reranker's prompt adds to a query and a candidate (its question and answer frame)
JUDGE_TEMPLATE = 60
#: tokens a listwise reranker generates per prompt ("Ans: (k)"; uniembed.rerank.listwise's max_new_tokens)
LISTWISE_ANSWER = 8
#: image side when neither the recipe (recipe.embedding.image_size) nor the curated images give one
DEFAULT_SIDE = 448


@dataclass(frozen=True)
class Job:
    name: str            # the Snakemake job (benchmark file stem)
    rule: str
    role: str            # which model: model | judge_model | miner
    kind: str            # train | encode | score
    sequences: float     # sequences through the model
    text_tokens: float   # per sequence, mean
    images: float        # per sequence, mean
    side: int
    flops: float
    steps: int | None = None
    batch: int | None = None
    chunk: int | None = None
    checkpointing: bool = False
    zero2: bool = False  # DeepSpeed ZeRO-2 shards the gradients and optimizer states over the job's GPUs
    parts: int = 1       # cluster jobs the work is split over (recipe.mine.parts, .judge.parts, .rerank.scoring.parts)
    saves: int = 0       # training checkpoints written (every save_every steps and the last)
    encode_flops: float = 0.0   # of ``flops``: the run's embedder encoding inside a scoring job (recall lists)
    generative: bool = False    # a reranker's training: the generative model and its LM head, not the embedder

    @property
    def rate_key(self) -> str:
        """Which measured rate the job runs at: an encoding or scoring job its model's and kind's; a training job
        its own, measured at its shape (text, images per sequence, embedder or generative: the tiny tower and the
        decoder run at different rates on a CPU, so one shape's rate does not carry to another's)."""
        return f"{self.role}/{self.kind}" + (f"/{self.name}" if self.kind == "train" else "")


class Workload:
    """Builds the jobs of one configuration (``cfg``: the composed stage config) from its sources' sizes."""

    def __init__(self, cfg, sizes: dict[str, SourceSizes], costs: dict[str, ModelCost]):
        self.cfg, self.sizes, self.costs = cfg, sizes, costs
        recipe = cfg.recipe
        self.side = int(recipe.embedding.get("image_size") or next(
            (s.image_side for s in sizes.values() if s.image_side), DEFAULT_SIDE))

    # --- sequences ----------------------------------------------------------------------------------
    def _items(self, source: str, kind: str) -> tuple[float, float]:
        """(text tokens, images) of one embedded query or candidate of ``source``."""
        s = self.sizes[source]
        tokens, images = (s.query_tokens, s.query_images) if kind == "query" else (s.candidate_tokens, s.candidate_images)
        return tokens + EMBED_TEMPLATE, images

    def _pair(self, source: str) -> tuple[float, float]:
        s = self.sizes[source]
        return s.query_tokens + s.candidate_tokens + JUDGE_TEMPLATE, s.query_images + s.candidate_images

    def _padded(self, role: str, batch: list[tuple[float, float, float]]) -> float:
        """The decoder length a training batch pads to: ``batch`` holds (sequences in one batch, text tokens,
        images) of each kind of sequence batched together; per kind its whole images and, with the probability that
        one of its sequences in the batch has one more (share ``f`` of them: ``1 - (1 - f)^n``), that image's tokens;
        the batch's longest kind. Text lengths at their means (their spread pads further)."""
        per_image = self.costs[role].image_tokens(self.side)[1]
        return max(t + per_image * (int(i) + 1 - (1 - (i - int(i))) ** n) for n, t, i in batch)

    def _job(self, name, rule, role, kind, parts: list[tuple[float, ...]], new_tokens: int = 0, **training) -> Job:
        """``parts``: (sequences, text tokens, images[, decoder length a training batch pads them to]) of each kind
        of sequence the job runs; ``new_tokens``: what a scoring job generates after each prompt (listwise)."""
        cost = self.costs[role]
        count = sum(part[0] for part in parts)
        if kind == "train":
            def train(t, i, padded=0.0):
                return cost.training_flops(t, i, self.side, training["checkpointing"], training["chunk"] is not None,
                                           training.get("generative", False), padded_to=padded)
            flops = sum(n * train(t, i, *padded) for n, t, i, *padded in parts)
            parts = [part[:3] for part in parts]
        else:
            flops = sum(n * (cost.forward_flops(t, i, self.side, head_tokens=1 if kind == "score" else 0)
                             + cost.decode_flops(t, i, self.side, new_tokens)) for n, t, i in parts)
        tokens = sum(n * t for n, t, _ in parts) / count if count else 0.0
        images = sum(n * i for n, _, i in parts) / count if count else 0.0
        return Job(name, rule, role, kind, count, tokens, images, self.side, flops, **training)

    # --- training -----------------------------------------------------------------------------------
    def _training(self, name: str, rule: str, role: str, stage, pair: bool = False) -> Job:
        examples = stage.max_steps * stage.batch_size
        source = stage.source
        objective = stage.get("objective") or {}
        if pair:   # a reranker: judge-style prompts; pointwise a Yes and a No pair, pair_list two pairs and a list
            tokens, images = self._pair(source)
            lists = objective.get("name") == "pair_list"
            k = objective.get("list_size") or PairListSettings.list_size   # the positive + list_size - 1 negatives
            candidate = self.sizes[source]
            parts = [(2, tokens, images)]
            if lists:   # the query and k candidates (one already counted in the pair's tokens)
                parts.append((1, tokens + (k - 1) * candidate.candidate_tokens,
                              images + (k - 1) * candidate.candidate_images))
            # a step's pairs and lists are collated into one batch (uniembed.train.rerank_task.RerankSteps)
            padded = self._padded(role, [(n * stage.batch_size, t, i) for n, t, i in parts])
            parts = [(n * examples, t, i, padded) for n, t, i in parts]
        else:      # an embedder: the query, its positive and num_negatives negatives; queries and candidates
            negatives = objective.get("num_negatives") or 0   # in separate forwards, of chunk_size with GradCache
            items = ((1, self._items(source, "query")), (1 + negatives, self._items(source, "candidate")))
            parts = [(n * examples, *item, self._padded(role, [(stage.get("chunk_size") or n * stage.batch_size, *item)]))
                     for n, item in items]
        return self._job(name, rule, role, "train", parts, steps=stage.max_steps, batch=stage.batch_size,
                         chunk=stage.get("chunk_size"), checkpointing=bool(stage.get("activation_checkpointing")),
                         zero2="zero2" in str(stage.get("backend") or ""), generative=pair,
                         saves=stage.max_steps // stage.save_every + (stage.max_steps % stage.save_every > 0))

    def _encode(self, name: str, rule: str, role: str, queries: list[tuple[str, int]], candidates: list[tuple[str, int]]) -> Job:
        parts = [(n, *self._items(source, "query")) for source, n in queries]
        parts += [(n, *self._items(source, "candidate")) for source, n in candidates]
        return self._job(name, rule, role, "encode", parts)

    def jobs(self) -> list[Job]:
        recipe, sources = self.cfg.recipe, self.sizes
        tags = run_model_tags(self.cfg)
        mine = recipe.get("mine")
        mining = bool(mine) and mine.source in sources
        rerank = (recipe.get("rerank") or {}) if mining else {}
        reranker_role = "judge_model" if rerank.get("base") == "judge_model" else "model"
        jobs = [self._training(f"pretrain_{name}", "pretrain", "model", recipe.pretrain.stages[name])
                for name in (recipe.pretrain.order if recipe.get("pretrain") else [])]
        if mining:
            s = sources[mine.source]
            queries = s.queries.get(mine.split, 0)
            pool = s.pool if mine.pool == "global" else s.candidates   # own pools: every candidate is in one
            job = self._encode("mine", "mine", "miner", [(mine.source, queries)], [(mine.source, pool)])
            search = 2.0 * queries * s.pool * self.costs["miner"].hidden_size   # exact inner products
            jobs.append(dataclasses.replace(job, flops=job.flops + search, parts=int(mine.get("parts") or 1)))
            if recipe.get("judge"):
                judged = min(queries, recipe.judge.get("max_queries") or queries)
                jobs.append(dataclasses.replace(self._job("judge", "judge", "judge_model", "score", [
                    (judged * (mine.top_k + s.positives), *self._pair(mine.source))]),
                    parts=int(recipe.judge.get("parts") or 1)))
            jobs += [self._training(f"hn_{name}", "train_hn", "model", stage)
                     for name, stage in ((recipe.get("train_hn") or {}).get("objectives") or {}).items()]
        rerankers = rerank.get("rerankers") or {}
        jobs += [self._training(f"reranker_{name}", "train_reranker", reranker_role, stage, pair=True)
                 for name, stage in rerankers.items()]
        evaluated = self._evaluated_queries()
        if rerankers and evaluated:
            jobs += [self._rerank(name, stage, reranker_role, evaluated) for name, stage in rerankers.items()]
        distill = recipe.get("distill")
        if distill and "distill" in tags:
            source = distill.train.source
            sampled = sources[source].queries.get("train", 0) * distill.fraction
            job = self._job("distill_data", "distill_data", reranker_role, "score",
                            [(sampled * (distill.candidates + 1), *self._pair(source))])
            # the recall model retrieves each sampled query's candidates from the training pool: both encoded
            encode = self._encode("", "", "model", [(source, sampled)], [(source, sources[source].pool)]).flops
            jobs.append(dataclasses.replace(job, flops=job.flops + encode, encode_flops=encode))
            jobs.append(self._training("distill", "distill", "model", distill.train))
        candidates = [(source, sources[source].candidates) for source, _ in evaluated]
        jobs += [self._encode(f"evaluate_{tag}", "evaluate", "model", evaluated, candidates) for tag in tags]
        return jobs

    def _rerank(self, name: str, stage, role: str, evaluated: list[tuple[str, int]]) -> Job:
        """Recall + rerank of the evaluation queries: every M-BEIR setting's list (pointwise: each list's top_k
        pairs, at most: a pair in two settings' lists is scored once; plus the held-out split choose_alpha reads,
        whose queries the recall model encodes first), or one listwise prompt of the top listwise_top_k per list,
        generating its answer."""
        rerank, sizes = self.cfg.recipe.rerank, self.sizes
        settings = {"mbeir": len(self.cfg.recipe.evaluate.mbeir_settings)}
        lists = [(source, n * settings.get(source, 1)) for source, n in evaluated]
        encode = 0.0
        if (stage.get("objective") or {}).get("name") == "pair_list":
            depth = rerank.get("listwise_top_k", 5)
            parts = [(n, *self._list(source, depth)) for source, n in lists]
            job = self._job(f"rerank_{rerank.recall}+{name}", "rerank", role, "score", parts, new_tokens=LISTWISE_ANSWER)
        else:
            parts = [(n * rerank.top_k, *self._pair(source)) for source, n in lists]
            choose = rerank.get("choose_alpha")
            if choose and "mbeir" in sizes:
                held = sizes["mbeir"].queries.get(choose.get("split", "val"), 0) * settings["mbeir"]
                parts.append((held * rerank.top_k, *self._pair("mbeir")))
                encode = self._encode("", "", "model", [("mbeir", held / settings["mbeir"])], []).flops
            job = self._job(f"rerank_{rerank.recall}+{name}", "rerank", role, "score", parts)
        return dataclasses.replace(job, flops=job.flops + encode, encode_flops=encode,
                                   parts=int(rerank.scoring.get("parts") or 1))

    def _list(self, source: str, depth: int) -> tuple[float, float]:
        """(text tokens, images) of a listwise prompt: the query and ``depth`` candidates."""
        s = self.sizes[source]
        return (s.query_tokens + depth * s.candidate_tokens + JUDGE_TEMPLATE,
                s.query_images + depth * s.candidate_images)

    def _evaluated_queries(self) -> list[tuple[str, int]]:
        """(source, queries) evaluated: M-BEIR's and MMEB's evaluation splits where the run has those sources."""
        evaluate = self.cfg.recipe.evaluate
        splits = {"mbeir": evaluate.mbeir_split, "mmeb": evaluate.mmeb_split}
        return [(source, self.sizes[source].queries.get(split, 0)) for source, split in splits.items()
                if source in self.sizes]
