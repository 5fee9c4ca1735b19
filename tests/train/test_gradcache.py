"""Gradient caching and cross-rank gathering give the gradients of the full-batch loss."""
import gc
import random
from contextlib import contextmanager, nullcontext
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from uniembed.train import gradcache
from uniembed.train.distributed import gather_with_grad, world_info
from uniembed.train.gradcache import gradcache_step
from uniembed.train.losses import info_nce
from uniembed.train.temperature import Temperature

#: float32 bound on |gradcache - full batch| for every gradient entry, relative to the largest
#: gradient entry (seen: <= 6e-7, a few float32 ulps); float64: 1e-10 absolute.
FLOAT32_REL = 1e-5


class BagEncoder(nn.Module):
    """Items are token-id lists: mean embedding-bag -> tanh MLP with dropout -> L2-normalised."""

    def __init__(self, dropout=0.0, vocab=40, width=16, dim=8):
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab, width, mode="mean")
        self.hidden, self.out = nn.Linear(width, width), nn.Linear(width, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, items):
        tokens = torch.tensor([t for item in items for t in item])
        offsets = torch.tensor([0] + [len(item) for item in items[:-1]]).cumsum(0)
        hidden = self.dropout(torch.tanh(self.hidden(self.bag(tokens, offsets))))
        return F.normalize(self.out(hidden), dim=-1)


def make_items(count, seed):
    rng = random.Random(seed)
    return [[rng.randrange(40) for _ in range(rng.randint(1, 5))] for _ in range(count)]


def make_setup(dtype=torch.float64, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return BagEncoder(dropout).to(dtype), Temperature(0.05).to(dtype)


def grads(model, tau):
    named = {name: p.grad.clone() for name, p in model.named_parameters()}
    return {**named, "tau": tau.tau.grad.clone()}


def max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


QUERIES, CANDIDATES = make_items(5, 1), make_items(5 + 10, 2)  # 5 positives + 2 hard negatives per query


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 3, 64])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gradcache_equals_full_batch(bidirectional, chunk_size, dtype):
    model, tau = make_setup(dtype)
    loss_fn = lambda q, c: info_nce(q, c, tau(), bidirectional=bidirectional)  # noqa: E731
    full = loss_fn(model(QUERIES), model(CANDIDATES))
    full.backward()
    want = grads(model, tau)
    largest = max(g.abs().max().item() for g in want.values())
    atol = 1e-10 if dtype == torch.float64 else FLOAT32_REL * max(largest, full.item())
    model.zero_grad(), tau.zero_grad()
    loss = gradcache_step(model, QUERIES, CANDIDATES, loss_fn, chunk_size)
    assert not loss.requires_grad and abs(loss.item() - full.item()) < atol
    assert max_diff(grads(model, tau), want) < atol


def chunked_reference(model, tau, chunk_size, seed):
    """Encode chunk by chunk *with* a graph, in gradcache's order, from the same seed."""
    def encode(items):
        return torch.cat([model(items[i:i + chunk_size]) for i in range(0, len(items), chunk_size)])

    torch.manual_seed(seed)
    info_nce(encode(QUERIES), encode(CANDIDATES), tau(), bidirectional=True).backward()
    return grads(model, tau)


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_dropout_gradients_match_thanks_to_rng_replay(chunk_size):
    model, tau = make_setup(dropout=0.1)
    want = chunked_reference(model, tau, chunk_size, seed=7)
    model.zero_grad(), tau.zero_grad()
    torch.manual_seed(7)
    gradcache_step(model, QUERIES, CANDIDATES, lambda q, c: info_nce(q, c, tau(), bidirectional=True), chunk_size)
    assert max_diff(grads(model, tau), want) < 1e-10


def test_dropout_without_rng_replay_gives_wrong_gradients(monkeypatch):
    model, tau = make_setup(dropout=0.1)
    want = chunked_reference(model, tau, 3, seed=7)
    model.zero_grad(), tau.zero_grad()
    monkeypatch.setattr(gradcache.RngState, "replay", lambda self: nullcontext())
    torch.manual_seed(7)
    gradcache_step(model, QUERIES, CANDIDATES, lambda q, c: info_nce(q, c, tau(), bidirectional=True), 3)
    assert max_diff(grads(model, tau), want) > 1e-3


def test_second_pass_replays_first_pass_and_rng_resumes():
    model, tau = make_setup(dropout=0.5)
    outputs = []
    encode = lambda items: outputs.append(model(items)) or outputs[-1]  # noqa: E731
    torch.manual_seed(3)
    gradcache_step(encode, QUERIES, CANDIDATES, lambda q, c: info_nce(q, c, tau()), 4)
    after = torch.get_rng_state()
    assert len(outputs) == 2 * (2 + 4)  # 2 query + 4 candidate chunks, encoded twice
    first, second = outputs[:len(outputs) // 2], outputs[len(outputs) // 2:]
    assert all(torch.equal(a, b.detach()) for a, b in zip(first, second))
    torch.manual_seed(3)
    with torch.no_grad():
        for chunk in [QUERIES[:4], QUERIES[4:]] + [CANDIDATES[i:i + 4] for i in range(0, 15, 4)]:
            model(chunk)
    assert torch.equal(after, torch.get_rng_state())  # only the first pass advanced the generator


def test_no_sync_wraps_all_but_the_last_chunk():
    model, tau = make_setup()
    entered = []

    @contextmanager
    def no_sync():
        entered.append(True)
        yield

    gradcache_step(model, QUERIES, CANDIDATES, lambda q, c: info_nce(q, c, tau()), 4, no_sync=no_sync)
    assert len(entered) == 2 + 4 - 1  # 2 query chunks + 4 candidate chunks, last one synchronises


def test_not_distributed_is_identity():
    x = torch.randn(3, 4)
    assert world_info() == (0, 1)
    assert gather_with_grad(x) is x


def destroy_after_ddp() -> None:
    """Destroy the process group once the worker has dropped its DDP wrapper (``del ddp`` first).

    Freeing the wrapper after ``destroy_process_group`` (when the worker's locals go) makes its reducer drop
    the group's last reference: the group's destructor then joins gloo's worker thread while holding
    the GIL, and that thread may be waiting for the GIL to free its last finished work -- a deadlock
    seen once in ~10 runs (the worker never exits, ``mp.spawn`` waits forever).
    """
    gc.collect()
    dist.destroy_process_group()


WORLD, LOCAL_Q, LOCAL_C, CHUNK = 2, 4, 8, 3  # per rank: 4 queries, 4 positives + 4 hard negatives
GLOBAL_Q, GLOBAL_C = make_items(WORLD * LOCAL_Q, 11), make_items(WORLD * LOCAL_C, 12)  # rank-major layout


def _distributed_worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            timeout=timedelta(seconds=60))
    queries = GLOBAL_Q[rank * LOCAL_Q:(rank + 1) * LOCAL_Q]
    candidates = GLOBAL_C[rank * LOCAL_C:(rank + 1) * LOCAL_C]
    positives = torch.tensor([r * LOCAL_C + i for r in range(WORLD) for i in range(LOCAL_Q)])  # rank-major gather
    model, tau = make_setup()
    # 1. raw embeddings: the gradient each rank gets for its own shard
    q, c = model(queries).detach().requires_grad_(), model(candidates).detach().requires_grad_()
    loss = info_nce(gather_with_grad(q), gather_with_grad(c), tau(), positive_index=positives, bidirectional=True)
    loss.backward()
    # 2. DDP encoder + gradient caching, all-reducing once on the last chunk
    ddp = nn.parallel.DistributedDataParallel(model)
    tau.zero_grad()
    loss_fn = lambda q, c: info_nce(  # noqa: E731
        gather_with_grad(q), gather_with_grad(c), tau(), positive_index=positives)
    gradcache_step(ddp, queries, candidates, loss_fn, CHUNK, no_sync=ddp.no_sync)
    torch.save({"world": world_info(), "q": q.grad, "c": c.grad, "loss": loss.detach(),
                "ddp": grads(model, tau)}, f"{out_dir}/rank{rank}.pt")
    del ddp  # before the group goes: see destroy_after_ddp
    destroy_after_ddp()


def test_two_gloo_ranks_match_one_process(tmp_path):
    mp.spawn(_distributed_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    assert [r["world"] for r in ranks] == [(0, 2), (1, 2)]
    positives = torch.tensor([r * LOCAL_C + i for r in range(WORLD) for i in range(LOCAL_Q)])
    model, tau = make_setup()
    q, c = model(GLOBAL_Q).detach().requires_grad_(), model(GLOBAL_C).detach().requires_grad_()
    loss = info_nce(q, c, tau(), positive_index=positives, bidirectional=True)
    loss.backward()
    for r in ranks:
        assert abs(r["loss"].item() - loss.item()) < 1e-12
    # each rank's shard gradient is (world_size x) its slice of the one-process gradient
    assert (torch.cat([r["q"] for r in ranks]) - WORLD * q.grad).abs().max() < 1e-10
    assert (torch.cat([r["c"] for r in ranks]) - WORLD * c.grad).abs().max() < 1e-10
    # DDP's average (local slots scaled by world size) = one-process gradient, temperature included
    tau.zero_grad()
    info_nce(model(GLOBAL_Q), model(GLOBAL_C), tau(), positive_index=positives).backward()
    want = grads(model, tau)
    for r in ranks:
        got = dict(r["ddp"])
        assert max_diff(got, want) < 1e-10
