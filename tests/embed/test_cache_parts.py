"""Parts of an embedding-cache entry (uniembed.embed.cache_parts): N jobs encode whole shards, the gather
assembles the one-job entry byte for byte and encodes nothing; a lost or foreign shard is named."""
import numpy as np
import pytest

from uniembed.embed.cache import encode_cached, key_digest, shard_name, write_shard
from uniembed.embed.cache_parts import encode_part, part_plan

from .test_cache import fake_encoder, key_for

IDS = [f"c{i}" for i in range(23)]


@pytest.mark.parametrize("parts", [1, 2, 3, 5, 9])
def test_parts_tile_whole_shards_and_gather_to_the_one_job_bytes(tmp_path, parts):
    key = key_for(tmp_path, IDS)
    one = encode_cached(fake_encoder([]), IDS, key, tmp_path / "one", shard_size=4)
    plans = [encode_part(fake_encoder([]), IDS, key, tmp_path / "parts", 4, p, parts) for p in range(parts)]
    rows = [plan["rows"] for plan in plans]
    assert rows[0][0] == 0 and rows[-1][1] == len(IDS)
    assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))            # contiguous, each row once
    assert all(start % 4 == 0 for start, _ in rows)                      # whole shards of the one-job tiling
    assert plans == [part_plan(len(IDS), key, 4, p, parts) for p in range(parts)]
    calls = []
    gathered = encode_cached(None, IDS, key, tmp_path / "parts", shard_size=4)
    assert calls == [] and gathered.ids == IDS
    assert (gathered.path / "embeddings.npy").read_bytes() == (one.path / "embeddings.npy").read_bytes()


def test_a_part_resumes_its_own_shards_and_leaves_the_others(tmp_path):
    key = key_for(tmp_path, IDS)
    calls = []
    encode_part(fake_encoder(calls), IDS, key, tmp_path, 4, 1, 3)        # shards 2..4 of 6: rows 8..16
    assert [(r.start, r.stop) for r in calls] == [(8, 12), (12, 16)]
    calls.clear()
    entry = tmp_path / key_digest(key)
    (entry / shard_name(12, 16)).write_bytes(b"half a shard")             # a killed write
    encode_part(fake_encoder(calls), IDS, key, tmp_path, 4, 1, 3)
    assert [(r.start, r.stop) for r in calls] == [(12, 16)]              # only the broken one again
    assert sorted(p.name for p in entry.glob("shard_*")) == [shard_name(8, 12), shard_name(12, 16)]


def test_the_gather_encodes_nothing_and_names_the_rows_a_lost_part_owned(tmp_path):
    key = key_for(tmp_path, IDS)
    for part in (0, 2):
        encode_part(fake_encoder([]), IDS, key, tmp_path, 4, part, 3)
    with pytest.raises(ValueError, match=r"rows 8\.\.16 of 23 have no verified shard .*rerun the encode part"):
        encode_cached(None, IDS, key, tmp_path, shard_size=4)
    entry = tmp_path / key_digest(key)
    write_shard(entry / shard_name(8, 16), 8, 16, [f"x{i}" for i in range(23)], np.zeros((8, 4), np.float32))
    with pytest.raises(ValueError, match="no verified shard"):           # a foreign shard (other ids) is discarded
        encode_cached(None, IDS, key, tmp_path, shard_size=4)
    assert not (entry / shard_name(8, 16)).exists()


def test_a_part_refuses_an_entry_of_another_key(tmp_path):
    key = key_for(tmp_path, IDS)
    other = key_for(tmp_path, IDS, mode="other")
    encode_part(fake_encoder([]), IDS, key, tmp_path, 4, 0, 2)
    entry = tmp_path / key_digest(key)
    (entry / "key.json").write_text((entry / "key.json").read_text().replace('"m"', '"other"'))
    with pytest.raises(ValueError, match="belongs to a different key"):
        encode_part(fake_encoder([]), IDS, key, tmp_path, 4, 1, 2)
    assert key_digest(other) != key_digest(key)
