"""Atomic artifacts: honour the umask (not mkstemp's 0600 / mkdtemp's 0700), leave nothing on failure."""
import os
import stat

import pyarrow as pa
import pytest

from uniembed.artifacts import atomic_path, current_umask, remove_orphans, write_json, write_parquet


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
