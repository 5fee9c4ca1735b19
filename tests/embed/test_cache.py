"""Embedding cache: resume after a kill, reuse on the same key, refuse a different key."""
import numpy as np
import pytest

from uniembed.embed.cache import cache_key, encode_cached, key_digest, load_cached
from uniembed.embed.embedder import Embedder, EmbeddingMode
from uniembed.embed.tables import embed_table, table_items


class Killed(RuntimeError):
    pass


def fake_encoder(calls, kill_at=None):
    def encode(rows):
        calls.append(rows)
        if kill_at is not None and len(calls) == kill_at:
            raise Killed()
        return np.stack([np.full(4, float(r)) for r in rows])
    return encode


def key_for(tmp_path, ids, mode="m"):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    table = tmp_path / "t.parquet"
    table.write_bytes(b"table")
    return cache_key(model, None, table, ids, {"mode": mode}, "float32")


def test_killed_run_resumes_without_reencoding_finished_shards(tmp_path):
    ids = [f"c{i}" for i in range(10)]
    key = key_for(tmp_path, ids)
    calls = []
    with pytest.raises(Killed):
        encode_cached(fake_encoder(calls, kill_at=3), ids, key, tmp_path / "cache", shard_size=3)
    assert not (tmp_path / "cache" / key_digest(key) / "meta.json").exists()
    resumed = []
    out = encode_cached(fake_encoder(resumed), ids, key, tmp_path / "cache", shard_size=3)
    assert [list(r) for r in resumed] == [[6, 7, 8], [9]]  # shards 0 and 1 were kept
    reference = encode_cached(fake_encoder([]), ids, key, tmp_path / "uninterrupted", shard_size=3)
    np.testing.assert_array_equal(out.embeddings, reference.embeddings)
    assert out.ids == ids and not list(out.path.glob("shard_*"))


def test_same_key_is_free_and_a_changed_key_reencodes(tmp_path):
    ids = ["a", "b", "c"]
    calls = []
    first = encode_cached(fake_encoder(calls), ids, key_for(tmp_path, ids), tmp_path / "cache")
    again = encode_cached(fake_encoder(calls), ids, key_for(tmp_path, ids), tmp_path / "cache")
    assert len(calls) == 1 and again.path == first.path
    other = encode_cached(fake_encoder(calls), ids, key_for(tmp_path, ids, mode="other"), tmp_path / "cache")
    assert len(calls) == 2 and other.path != first.path


def test_loading_with_a_different_key_is_an_error(tmp_path):
    ids = ["a", "b"]
    entry = encode_cached(fake_encoder([]), ids, key_for(tmp_path, ids), tmp_path / "cache")
    with pytest.raises(ValueError, match=r"different \['mode'\]"):
        load_cached(entry.path, key_for(tmp_path, ids, mode="other"))
    with pytest.raises(FileNotFoundError, match="not a complete embedding cache"):
        load_cached(tmp_path)


def test_bad_dtype_and_empty_ids(tmp_path):
    with pytest.raises(ValueError, match="dtype must be one of"):
        cache_key(None, None, __file__, ["a"], {}, "int8")
    with pytest.raises(ValueError, match="empty id list"):
        encode_cached(fake_encoder([]), [], {"dtype": "float32"}, tmp_path)


def test_embed_table_with_the_tiny_model(tiny_qwen2vl, small_world, tmp_path):
    table = small_world["curated"]["mbeir"] / "candidates.parquet"
    embedder = Embedder.from_pretrained(tiny_qwen2vl, mode=EmbeddingMode(), device="cpu")
    ids, items = table_items(table, "candidates")
    subset = ids[:20]
    out = embed_table(embedder, table, "candidates", tmp_path, model_dir=tiny_qwen2vl, ids=subset, dtype="float16",
                      shard_size=8, progress=False)
    assert out.embeddings.dtype == np.float16 and out.ids == subset
    direct = embedder.encode(items[:20])
    np.testing.assert_allclose(out.embeddings.astype(np.float32), direct, atol=2e-3)
    with pytest.raises(KeyError, match="ids not in the table"):
        table_items(table, "candidates", ["nope"])
