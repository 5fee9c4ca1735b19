"""Atomic artifacts: honour the umask (not mkstemp's 0600 / mkdtemp's 0700), leave nothing on failure;
a directory saved with a manifest verifies only when every file in it does."""
import hashlib
import json
import os
import stat

import pyarrow as pa
import pytest

from uniembed import artifacts
from uniembed.artifacts import (MANIFEST_NAME, ArtifactError, atomic_path, current_umask, remove_orphans,
                                verify_artifact, write_json, write_parquet)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_current_umask_reads_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask


def test_files_get_the_mode_open_would_give(tmp_path, umask):
    expected = 0o666 & ~umask
    with open(tmp_path / "plain", "w"):
        pass
    assert mode(tmp_path / "plain") == expected  # what a plain open() gives, for comparison
    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("x")
    write_json({"a": 1}, tmp_path / "b.json")
    write_parquet(pa.table({"x": [1, 2]}), tmp_path / "sub" / "c.parquet")
    for name in ("a.txt", "b.json", "sub/c.parquet"):
        assert mode(tmp_path / name) == expected, name
    assert mode(tmp_path / "sub") == 0o777 & ~umask


def test_overwriting_an_artifact_gives_the_fresh_mode(tmp_path, umask):
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o600)
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and mode(target) == 0o666 & ~umask


def test_directories_get_the_mode_mkdir_would_give(tmp_path, umask):
    with atomic_path(tmp_path / "model", directory=True) as tmp:
        (tmp / "config.json").write_text("{}")
        (tmp / "inner").mkdir()
    assert mode(tmp_path / "model") == 0o777 & ~umask
    assert mode(tmp_path / "model" / "config.json") == 0o666 & ~umask
    assert mode(tmp_path / "model" / "inner") == 0o777 & ~umask


def test_safetensors_inside_a_directory_artifact_are_readable_like_the_rest(tmp_path, umask):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    with atomic_path(tmp_path / "model", directory=True) as tmp:
        save_file({"w": torch.zeros(2)}, tmp / "model.safetensors")
        (tmp / "config.json").write_text("{}")
    assert mode(tmp_path / "model" / "model.safetensors") == mode(tmp_path / "model" / "config.json") == 0o666 & ~umask


def test_a_failed_block_leaves_nothing(tmp_path):
    for directory in (False, True):
        with pytest.raises(RuntimeError), atomic_path(tmp_path / "out", directory=directory) as tmp:
            if directory:
                (tmp / "f").write_text("half")
            raise RuntimeError("killed")
        assert list(tmp_path.iterdir()) == []


def test_remove_orphans_takes_temporaries_only(tmp_path):
    (tmp_path / ".a.npy.x1.tmp").write_text("half")
    (tmp_path / ".model.x2.tmp").mkdir()
    (tmp_path / ".model.x2.tmp" / "f").write_text("half")
    (tmp_path / "keep.npy").write_text("done")
    (tmp_path / ".lock").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".b.x3.tmp").write_text("not ours")
    removed = remove_orphans(tmp_path)
    assert sorted(p.name for p in removed) == [".a.npy.x1.tmp", ".model.x2.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "keep.npy", "sub"]
    assert (tmp_path / "sub" / ".b.x3.tmp").exists()


def _stage_output(root):
    """A training stage's output as the trainers write it: adapter/, model/ and the summary, one manifest."""
    with atomic_path(root / "models" / "reranker", directory=True, manifest=True) as tmp:
        (tmp / "adapter").mkdir()
        (tmp / "adapter" / "adapter_model.safetensors").write_bytes(b"A" * 5000)
        (tmp / "adapter" / "adapter_config.json").write_text("{}")
        (tmp / "model").mkdir()
        (tmp / "model" / "model.safetensors").write_bytes(b"M" * 3000)
        (tmp / "model" / "config.json").write_text('{"model_type": "qwen2_vl"}')
        (tmp / "training_summary.json").write_text("{}")
    return root / "models" / "reranker"


def test_manifest_lists_every_file_with_size_and_digest(tmp_path):
    out = _stage_output(tmp_path)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["format"] == 1 and manifest["algorithm"] == "sha256"
    assert sorted(manifest["files"]) == ["adapter/adapter_config.json", "adapter/adapter_model.safetensors",
                                         "model/config.json", "model/model.safetensors", "training_summary.json"]
    for rel, entry in manifest["files"].items():
        data = (out / rel).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}, rel
    assert not list(tmp_path.joinpath("models").glob(".*.tmp"))


def test_manifest_needs_a_directory(tmp_path):
    with pytest.raises(ValueError, match="directory=True"), atomic_path(tmp_path / "f", manifest=True):
        pass


def test_an_intact_output_verifies_from_the_top_or_any_subdirectory(tmp_path):
    out = _stage_output(tmp_path)
    assert verify_artifact(out) and verify_artifact(out / "model") and verify_artifact(out / "adapter")


def _truncate(path):
    path.write_bytes(path.read_bytes()[:1234])


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {  # (what is done to adapter/adapter_model.safetensors, the file named, words of the message)
    "truncated": (_truncate, "adapter/adapter_model.safetensors", r"size 1234 bytes, the manifest written at save "
                                                                 r"time says 5000 \(truncated or replaced\)"),
    "changed_byte": (_flip_a_byte, "adapter/adapter_model.safetensors", r"sha256 [0-9a-f]{64}, the manifest .* says "
                                                                        r"[0-9a-f]{64} \(same size, 5000 bytes"),
    "deleted": (lambda p: p.unlink(), "adapter/adapter_model.safetensors", r"missing; the manifest .* lists it"),
    "stray_weights": (lambda p: (p.parent / "extra.safetensors").write_bytes(b"x"), "adapter/extra.safetensors",
                      r"a weight file that the manifest .* does not list"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damage_anywhere_in_the_output_fails_naming_the_file(tmp_path, damage):
    edit, named, words = DAMAGE[damage]
    out = _stage_output(tmp_path)
    assert verify_artifact(out / "model")  # cached now: the damage must still be seen
    edit(out / "adapter" / "adapter_model.safetensors")
    with pytest.raises(ArtifactError, match=words) as error:
        verify_artifact(out / "model")  # the sibling adapter/ is checked too
    message = str(error.value)
    assert message.startswith(f"{out / named}: ") and f"rerun the stage that writes {out}" in message


def test_a_stray_weight_file_at_the_top_fails(tmp_path):
    out = _stage_output(tmp_path)
    (out / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ArtifactError, match=f"{out / 'pytorch_model.bin'}: a weight file"):
        verify_artifact(out / "model")


def test_no_manifest_is_not_verified(tmp_path):
    (tmp_path / "downloaded").mkdir()
    (tmp_path / "downloaded" / "model.safetensors").write_bytes(b"x")
    assert verify_artifact(tmp_path / "downloaded") is False
    assert verify_artifact(tmp_path / "missing") is False


def test_verification_is_cached_but_a_later_change_is_seen(tmp_path, monkeypatch):
    out = _stage_output(tmp_path)
    hashed = []
    real = artifacts.sha256_file
    monkeypatch.setattr(artifacts, "sha256_file", lambda path: hashed.append(path) or real(path))
    assert verify_artifact(out / "model")
    assert len(hashed) == 5
    assert verify_artifact(out / "adapter") and verify_artifact(out / "model") and len(hashed) == 5  # hashed once
    weights = out / "model" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    _flip_a_byte(weights)  # same size; only the mtime tells the cache
    os.utime(weights, ns=(before + 10**9, before + 10**9))
    with pytest.raises(ArtifactError, match=f"{weights}: sha256"):
        verify_artifact(out / "model")


def test_verified_digest_is_shared_with_the_model_fingerprint(tmp_path, monkeypatch):
    from uniembed.embed.cache import file_digest, fingerprint_model_dir

    out = _stage_output(tmp_path)
    expected = fingerprint_model_dir(out / "model", full=True)
    artifacts._VERIFIED.clear()
    artifacts._DIGESTS.clear()
    hashed = []
    real = artifacts.sha256_file
    monkeypatch.setattr(artifacts, "sha256_file", lambda path: hashed.append(path) or real(path))
    monkeypatch.setattr("uniembed.embed.cache._MEMO", {})
    assert fingerprint_model_dir(out / "model", full=True) == expected
    assert len(hashed) == 5  # the fingerprint reused the verified digests
    weights = out / "model" / "model.safetensors"
    assert file_digest(weights) == f"3000:{hashlib.sha256(weights.read_bytes()).hexdigest()}"
