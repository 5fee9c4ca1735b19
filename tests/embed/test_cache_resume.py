"""Resuming an embedding cache: a killed encode rerun with another shard size, and hand-made wrong shards."""
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from uniembed.embed import cache
from uniembed.embed.cache import encode_cached, key_digest, load_cached, read_shard, shard_name, write_shard
from uniembed.embed.embedder import Embedder, EmbeddingMode
from uniembed.embed.tables import embed_table, table_items

from .test_cache import fake_encoder, key_for

CHILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import numpy as np
    from uniembed.embed import cache

    root, marker, key_file, shard_size, block_at, where = sys.argv[1:7]
    key = json.loads(Path(key_file).read_text())
    ids = [f"c{i}" for i in range(key["n"])]
    real_savez, calls = np.savez, []

    def block():
        Path(marker).write_text("blocked")
        time.sleep(600)

    def encode(rows):  # where == "encode": hangs while encoding the shard after ``block_at`` finished ones
        calls.append(rows)
        if where == "encode" and len(calls) == int(block_at) + 1:
            block()
        return np.stack([np.full(4, float(r)) for r in rows])

    def savez(f, **arrays):  # where == "write": that shard hangs half-written instead
        if len(calls) == int(block_at) + 1:
            f.write(b"half a shard"); f.flush()
            block()
        real_savez(f, **arrays)

    if where == "write":
        np.savez = savez
    cache.encode_cached(encode, ids, key, root, shard_size=int(shard_size))
""")


def kill_when_blocked(argv, marker, timeout=120.0):
    """Start ``argv``, wait until it writes ``marker``, then SIGKILL it by PID (a SLURM kill, an OOM kill)."""
    proc = subprocess.Popen(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"child exited with {proc.returncode} before blocking: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("child never reached the blocking point")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("where", ["encode", "write"])
def test_killed_subprocess_resumed_with_the_default_shard_size_equals_an_uninterrupted_encode(tmp_path, caplog, where):
    ids = [f"c{i}" for i in range(30)]
    key = key_for(tmp_path, ids)
    (tmp_path / "key.json").write_text(json.dumps(key))
    (tmp_path / "child.py").write_text(CHILD)
    root, marker = tmp_path / "cache", tmp_path / "blocked"
    kill_when_blocked([sys.executable, str(tmp_path / "child.py"), str(root), str(marker), str(tmp_path / "key.json"),
                       "4", "3", where], marker)
    entry = root / key_digest(key)
    assert len(list(entry.glob("shard_*"))) == 3 and not (entry / "meta.json").exists()
    if where == "write":
        assert len(list(entry.glob(".*.tmp"))) == 1  # a kill mid-write leaves an orphan

    calls = []
    with caplog.at_level(logging.INFO, logger="uniembed.embed.cache"):
        out = encode_cached(fake_encoder(calls), ids, key, root)  # the default shard_size (4096)
    reference = encode_cached(fake_encoder([]), ids, key, tmp_path / "uninterrupted")
    np.testing.assert_array_equal(out.embeddings, reference.embeddings)
    assert out.ids == ids and not list(entry.glob("shard_*")) and not list(entry.glob(".*.tmp"))
    assert [list(r) for r in calls] == [list(range(12, 30))]  # the three killed-run shards were reused
    assert ("removed 1 orphan temporaries" in caplog.text) == (where == "write")


TINY_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from uniembed.embed.embedder import Embedder, EmbeddingMode
    from uniembed.embed.tables import embed_table, table_items

    model, table, root, marker, n = sys.argv[1:6]
    embedder = Embedder.from_pretrained(model, mode=EmbeddingMode(), device="cpu")
    real_encode, calls = embedder.encode, []

    def encode(items, **kwargs):  # the third shard hangs until killed
        calls.append(len(items))
        if len(calls) == 3:
            Path(marker).write_text("blocked")
            time.sleep(600)
        return real_encode(items, **kwargs)

    embedder.encode = encode
    ids = table_items(table, "candidates")[0][: int(n)]
    embed_table(embedder, table, "candidates", root, model_dir=model, ids=ids, shard_size=8, progress=False)
""")


def test_killed_tiny_model_encode_resumed_with_another_shard_size(tiny_qwen2vl, small_world, tmp_path):
    table = small_world["curated"]["mbeir"] / "candidates.parquet"
    ids = table_items(table, "candidates")[0][:28]
    (tmp_path / "child.py").write_text(TINY_CHILD)
    marker = tmp_path / "blocked"
    kill_when_blocked([sys.executable, str(tmp_path / "child.py"), str(tiny_qwen2vl), str(table),
                       str(tmp_path / "cache"), str(marker), str(len(ids))], marker, timeout=300)
    embedder = Embedder.from_pretrained(tiny_qwen2vl, mode=EmbeddingMode(), device="cpu")
    real_encode, resumed = embedder.encode, []
    embedder.encode = lambda items, **kw: resumed.append(len(items)) or real_encode(items, **kw)
    out = embed_table(embedder, table, "candidates", tmp_path / "cache", model_dir=tiny_qwen2vl, ids=ids,
                      shard_size=4096, progress=False)
    reference = embed_table(embedder, table, "candidates", tmp_path / "uninterrupted", model_dir=tiny_qwen2vl, ids=ids,
                            shard_size=4096, progress=False)
    assert resumed[0] == 28 - 16  # the two finished shards of 8 were reused
    assert out.ids == ids and out.path.name == reference.path.name
    # equal on CPU today; the tolerance only allows for BLAS kernels that vary with the batch shape
    np.testing.assert_allclose(out.embeddings, reference.embeddings, rtol=0, atol=1e-6)


# --- hand-made wrong shards -------------------------------------------------------------------------

IDS = [f"c{i}" for i in range(10)]


def rows(start, stop, width=4):
    return np.stack([np.full(width, float(r)) for r in range(start, stop)]).astype(np.float32)


@pytest.fixture
def entry(tmp_path):
    key = key_for(tmp_path, IDS)
    path = tmp_path / "cache" / key_digest(key)
    path.mkdir(parents=True)
    return key, path


def resume(key, path, shard_size=3):
    calls = []
    out = encode_cached(fake_encoder(calls), IDS, key, path.parent, shard_size=shard_size)
    np.testing.assert_array_equal(out.embeddings, rows(0, 10))
    return sorted(r for call in calls for r in call)


def test_valid_shards_of_another_size_are_reused_and_only_gaps_encoded(entry):
    key, path = entry
    write_shard(path / shard_name(0, 4), 0, 4, IDS, rows(0, 4))
    write_shard(path / shard_name(4, 8), 4, 8, IDS, rows(4, 8))
    assert resume(key, path) == [8, 9]


@pytest.mark.parametrize("wrong", ["ids", "renamed", "rows", "dtype", "legacy", "garbage", "out_of_range"])
def test_a_wrong_shard_is_discarded_and_reencoded(entry, wrong, caplog):
    key, path = entry
    write_shard(path / shard_name(0, 4), 0, 4, IDS, rows(0, 4))
    bad = path / shard_name(4, 8)
    if wrong == "ids":  # the right rows under another run's ids (e.g. a different id order)
        with bad.open("wb") as f:
            np.savez(f, start=4, stop=8, ids=np.array(IDS[3:7]), embeddings=rows(4, 8))
    elif wrong == "renamed":  # rows 0..4 moved to where rows 4..8 belong
        write_shard(bad, 0, 4, IDS, rows(0, 4))
    elif wrong == "rows":
        with bad.open("wb") as f:
            np.savez(f, start=4, stop=8, ids=np.array(IDS[4:8]), embeddings=rows(4, 7))
    elif wrong == "dtype":
        write_shard(bad, 4, 8, IDS, rows(4, 8).astype(np.float16))
    elif wrong == "legacy":  # the old format: a bare array, no range or ids
        bad = path / "shard_00001.npy"
        np.save(bad, rows(4, 8))
    elif wrong == "garbage":
        bad.write_bytes(b"not a zip")
    else:
        bad = path / shard_name(8, 12)
        with bad.open("wb") as f:
            np.savez(f, start=8, stop=12, ids=np.array(["x"] * 4), embeddings=rows(8, 12))
    with caplog.at_level(logging.WARNING, logger="uniembed.embed.cache"):
        encoded = resume(key, path)
    assert encoded == list(range(4, 10)) and not bad.exists()
    assert f"discarding embedding shard: {bad}" in caplog.text


def test_overlapping_shards_keep_one_tiling(entry, caplog):
    key, path = entry
    write_shard(path / shard_name(0, 4), 0, 4, IDS, rows(0, 4))
    write_shard(path / shard_name(2, 6), 2, 6, IDS, rows(2, 6))
    with caplog.at_level(logging.WARNING, logger="uniembed.embed.cache"):
        assert resume(key, path) == list(range(4, 10))
    assert "overlaps the shards kept" in caplog.text


def test_read_shard_names_what_differs(entry):
    _, path = entry
    write_shard(path / shard_name(0, 3), 0, 3, IDS, rows(0, 3))
    with pytest.raises(cache.ShardError, match=r"row 1 is 'c1', expected 'zz'"):
        read_shard(path / shard_name(0, 3), ["c0", "zz"] + IDS[2:], np.float32)
    with pytest.raises(cache.ShardError, match="width 4, expected float32 width 5"):
        read_shard(path / shard_name(0, 3), IDS, np.float32, dim=5)


def test_assembly_refuses_a_gap_or_an_overlap(entry):
    key, path = entry
    write_shard(path / shard_name(0, 4), 0, 4, IDS, rows(0, 4))
    write_shard(path / shard_name(5, 10), 5, 10, IDS, rows(5, 10))
    with pytest.raises(ValueError, match=r"1 rows have no shard \(first: row 4, id 'c4'\)"):
        cache._assemble(path, IDS, np.float32, 4, [path / shard_name(0, 4), path / shard_name(5, 10)])
    write_shard(path / shard_name(2, 5), 2, 5, IDS, rows(2, 5))
    with pytest.raises(ValueError, match="rows 2..5 overlap"):
        cache._assemble(path, IDS, np.float32, 4, [path / shard_name(0, 4), path / shard_name(2, 5)])
    assert not (path / "embeddings.npy").exists() and not list(path.glob(".*.tmp"))


def test_an_encoder_returning_the_wrong_rows_is_an_error(entry):
    key, path = entry
    with pytest.raises(ValueError, match=r"returned shape \[2, 4\] for rows 0..3"):
        encode_cached(lambda r: rows(0, 2), IDS, key, path.parent, shard_size=3)
    assert not (path / "meta.json").exists()


def test_orphans_of_killed_jobs_are_removed_on_resume(entry, caplog):
    key, path = entry
    (path / f".{shard_name(0, 3)}.abc123.tmp").write_bytes(b"half")
    (path / ".embeddings.npy.def456.tmp").write_bytes(b"half")
    with caplog.at_level(logging.INFO, logger="uniembed.embed.cache"):
        resume(key, path)
    assert not list(path.glob(".*.tmp"))
    assert "removed 2 orphan temporaries of killed jobs" in caplog.text


def test_a_complete_entry_is_checked_when_loaded(entry):
    key, path = entry
    resume(key, path)
    (path / "ids.txt").write_text("".join(f"{i}\n" for i in IDS[1:] + IDS[:1]))
    with pytest.raises(ValueError, match="ids.txt: ids do not match the digest in meta.json"):
        encode_cached(fake_encoder([]), IDS, key, path.parent)
    (path / "ids.txt").write_text("".join(f"{i}\n" for i in IDS))
    np.save(path / "embeddings.npy", rows(0, 9))
    with pytest.raises(ValueError, match=r"embeddings.npy: float32 \[9, 4\], but meta.json says float32 \[10, 4\]"):
        load_cached(path, key)
    np.save(path / "embeddings.npy", rows(0, 10))
    with pytest.raises(ValueError, match="not the ids asked for: row 0 is 'c0', expected 'x'"):
        load_cached(path, key, ["x"] + IDS[1:])
    assert load_cached(path, key, IDS).ids == IDS


def test_a_second_job_waits_for_the_owner_and_never_removes_its_temporaries(entry, caplog):
    key, path = entry
    live = path / f".{shard_name(0, 3)}.live.tmp"
    results = []
    with caplog.at_level(logging.INFO, logger="uniembed.embed.cache"):
        with cache._owned(path):  # the first job, writing a shard
            live.write_bytes(b"being written")
            second = threading.Thread(target=lambda: results.append(resume(key, path)))
            second.start()
            second.join(timeout=1.0)
            assert second.is_alive() and live.exists() and not results
        second.join(timeout=60)
    assert results == [list(range(10))] and not live.exists()
    assert "another job is encoding this entry; waiting for it" in caplog.text
