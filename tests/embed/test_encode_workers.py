"""encode's input pipeline: DataLoader workers prepare the same batches, so the embeddings are bitwise equal."""
import dataclasses

import numpy as np
import pytest

from uniembed.data.loader import LoaderSettings
from uniembed.embed.embedder import Embedder, EmbeddingMode
from uniembed.embed.tables import table_items


@pytest.mark.parametrize("mode", [EmbeddingMode(), EmbeddingMode(pooling="last", attention="causal", image_size=64)],
                         ids=["mean-bidir", "last-causal-resized"])
def test_encode_is_bitwise_identical_for_0_and_2_workers(small_world, tiny_qwen2vl, mode):
    _, candidates = table_items(small_world["curated"]["mbeir"] / "candidates.parquet", "candidates")
    _, queries = table_items(small_world["curated"]["mbeir"] / "queries.parquet", "queries")
    pictured = [c for c in candidates if c.image_path]
    items = pictured[:12] + candidates[:12] + pictured[-12:] + queries[:16]   # text, image, image + text; several batches
    assert {bool(i.image_path) for i in items} == {True, False}
    embedder = Embedder.from_pretrained(tiny_qwen2vl, mode=mode, device="cpu")
    inline = embedder.encode(items, batch_size=8)
    embedder.loader = LoaderSettings(workers=2, prefetch_factor=2)
    workers = embedder.encode(items, batch_size=8)
    assert inline.dtype == workers.dtype == np.float32 and np.array_equal(inline, workers)
    embedder.loader = dataclasses.replace(embedder.loader, workers=3, prefetch_factor=1)   # more workers, odd batches
    three = embedder.encode(items, batch_size=5)
    embedder.loader = LoaderSettings()
    assert np.array_equal(three, embedder.encode(items, batch_size=5))
