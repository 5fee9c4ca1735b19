"""Embedding cache: resume after a kill, reuse on the same key, refuse a different key."""
import json

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
    key = json.loads((out.path / "meta.json").read_text())["key"]
    assert key["compute"] == {"device": "cpu", "torch_dtype": "torch.float32"}
    direct = embedder.encode(items[:20])
    np.testing.assert_allclose(out.embeddings.astype(np.float32), direct, atol=2e-3)
    with pytest.raises(KeyError, match="ids not in the table"):
        table_items(table, "candidates", ["nope"])


def test_key_has_the_code_version_and_a_changed_one_gets_its_own_entry(tmp_path, monkeypatch):
    from uniembed.embed import cache
    from uniembed.provenance import code_version

    ids = ["a", "b"]
    key = key_for(tmp_path, ids)
    assert key["code"] == code_version("embed", "model") and key["format"] == cache.FORMAT
    first = encode_cached(fake_encoder([]), ids, key, tmp_path / "cache")
    monkeypatch.setattr(cache, "code_version", lambda *modules: "a-fixed-encoder")
    changed = key_for(tmp_path, ids)
    calls = []
    second = encode_cached(fake_encoder(calls), ids, changed, tmp_path / "cache")
    assert len(calls) == 1 and second.path != first.path
    with pytest.raises(ValueError, match=r"different \['code'\]"):
        load_cached(first.path, changed)


def test_weights_differing_only_in_the_middle_get_different_keys(tmp_path):
    """Two fine-tunes of one base share both ends of a large weights file; the key must still differ."""
    keys = []
    for n, middle in enumerate((b"\0", b"\1")):
        model = tmp_path / f"model{n}"
        model.mkdir()
        (model / "config.json").write_text("{}")
        weights = bytearray(12 << 20)
        weights[6 << 20] = middle[0]
        (model / "model.safetensors").write_bytes(bytes(weights))
        keys.append(cache_key(model, None, __file__, ["a"], {}, "float32"))
    assert keys[0]["model"] != keys[1]["model"] and key_digest(keys[0]) != key_digest(keys[1])


def test_adapter_and_ids_are_in_the_key(tmp_path):
    ids = ["a", "b"]
    base = key_for(tmp_path, ids)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"lora-1")
    with_adapter = cache_key(tmp_path / "model", adapter, tmp_path / "t.parquet", ids, {"mode": "m"}, "float32")
    (adapter / "adapter_model.safetensors").write_bytes(b"lora-2")
    retrained = cache_key(tmp_path / "model", adapter, tmp_path / "t.parquet", ids, {"mode": "m"}, "float32")
    reordered = key_for(tmp_path, ids[::-1])
    assert len({key_digest(k) for k in (base, with_adapter, retrained, reordered)}) == 4
