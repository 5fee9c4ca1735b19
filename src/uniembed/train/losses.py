"""InfoNCE over a batch of queries and candidates (U-MARVEL Appendix C, eq. 2).

For query q with positive c+ and candidate set {c_i} (every candidate of the batch):

    L = -log exp(sim(q, c+) / tau) / sum_i exp(sim(q, c_i) / tau)

averaged over the queries. Embeddings arrive L2-normalised, so sim is a dot product. The
candidate set is the B positives followed by any extra negatives (the hard negatives of all
queries, U-MARVEL §3.2.2): in-batch, every candidate is a negative for every other query.
U-MARVEL trains the text stage (NLI) with this unidirectional loss and the image-text stage
(CC3M) with the bidirectional (CLIP-style) variant (§3.1.3); temperature 0.05, fixed or
learnable (§3.2.1, Finding 4, Table 12; see :mod:`uniembed.train.temperature`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def info_nce(queries: Tensor, candidates: Tensor, temperature: Tensor | float, *,
             positive_index: Tensor | None = None, bidirectional: bool = False,
             exclude: Tensor | None = None) -> Tensor:
    """Mean InfoNCE loss (U-MARVEL eq. 2), optionally symmetrised.

    Args:
        queries: ``[B, d]`` L2-normalised query embeddings.
        candidates: ``[N, d]`` L2-normalised candidate embeddings, ``N >= B``; by default row
            ``i < B`` is query ``i``'s positive and rows ``B..N-1`` are extra negatives.
        temperature: tau, a float or a 0-d tensor (learnable temperatures keep their graph).
        positive_index: ``[B]`` int64, row of ``candidates`` holding each query's positive
            (e.g. after gathering shards across ranks); default ``arange(B)``.
        bidirectional: if true, return ``(CE(q -> c) + CE(c+ -> q)) / 2`` where the reverse
            direction scores each query's positive against the B queries (CLIP-style, the
            "bidirectional InfoNCE" of U-MARVEL §3.1.3). Positives must then be distinct rows,
            unless ``exclude`` masks the repeats.
        exclude: ``[B, N]`` bool, candidates left out of query i's denominator (e.g. another
            row holding the same item as its positive, which is not a negative). Never set on
            a query's own positive. In the reverse direction, positive ``j``'s denominator omits
            query ``i`` when ``exclude[i, positive_index[j]]``.

    Returns:
        A 0-d tensor, the loss averaged over queries (and over both directions).
    """
    if queries.dim() != 2 or candidates.dim() != 2 or queries.shape[1] != candidates.shape[1]:
        raise ValueError(f"expected [B, d] queries and [N, d] candidates, got "
                         f"{tuple(queries.shape)} and {tuple(candidates.shape)}")
    batch = queries.shape[0]
    if positive_index is None:
        if candidates.shape[0] < batch:
            raise ValueError(f"{candidates.shape[0]} candidates cannot hold {batch} positives")
        positive_index = torch.arange(batch, device=queries.device)
    else:
        positive_index = positive_index.to(device=queries.device, dtype=torch.long)
        if positive_index.shape != (batch,):
            raise ValueError(f"positive_index must have shape ({batch},), got {tuple(positive_index.shape)}")
    logits = queries @ candidates.T / temperature
    if exclude is not None:
        if exclude.shape != logits.shape:
            raise ValueError(f"exclude must have shape {tuple(logits.shape)}, got {tuple(exclude.shape)}")
        if exclude[torch.arange(batch, device=exclude.device), positive_index.to(exclude.device)].any():
            raise ValueError("exclude masks a query's own positive")
        exclude = exclude.to(logits.device)
        logits = logits.masked_fill(exclude, float("-inf"))
    loss = F.cross_entropy(logits, positive_index)
    if not bidirectional:
        return loss
    if exclude is None and positive_index.unique().numel() != batch:
        raise ValueError("bidirectional InfoNCE needs a distinct positive row per query")
    reverse_logits = candidates[positive_index] @ queries.T / temperature
    if exclude is not None:
        reverse_logits = reverse_logits.masked_fill(exclude[:, positive_index].T, float("-inf"))
    reverse = F.cross_entropy(reverse_logits, torch.arange(batch, device=queries.device))
    return (loss + reverse) / 2
