"""Atomic artifact writing: a killed job never leaves a half-written file a later stage would trust.

Every writer goes through :func:`atomic_path`: write to a temporary sibling, then ``os.replace``
(atomic on POSIX within one filesystem). The artifact gets the mode a plain ``open()`` /
``mkdir()`` would give it (0666 / 0777 masked by the umask), not the private 0600 / 0700 of the
temporary, so colleagues on shared storage can read results when the umask allows it.

A directory written with ``manifest=True`` (saved models: ``adapter/``, ``model/`` and the summary
of a training stage) also holds ``artifact_manifest.json``: the size and sha256 of every file in
it. :func:`verify_artifact` checks all of them before a model is loaded, so a truncated or
replaced file anywhere in the stage output is an error naming that file, not a garbled load.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

TMP_SUFFIX = ".tmp"
MANIFEST_NAME = "artifact_manifest.json"
MANIFEST_FORMAT = 1
WEIGHT_SUFFIXES = (".safetensors", ".bin")
_CHUNK = 1 << 20  # bytes read per hash update


class ArtifactError(ValueError):
    """A saved artifact that does not match the manifest written when it was saved."""


def current_umask() -> int:
    """The process umask, read without changing it (``/proc``), else by the set-and-restore swap."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)  # a restrictive value while swapped; restored at once
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """What ``open()`` (0666) or ``mkdir()`` (0777) would give a new path under the current umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


def _publish_modes(tmp: Path, directory: bool) -> None:
    """Give the temporary the umask-honouring mode of a fresh path (``mkstemp``/``mkdtemp`` make it private).

    Inside a directory artifact, ``*.safetensors`` files left at 0600 get the file mode too:
    safetensors >= 0.8 writes through a private temporary file as well (safetensors issue #782).
    """
    file_mode = default_mode(False)
    if directory:
        for path in tmp.rglob("*.safetensors"):
            if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o777 == 0o600:
                path.chmod(file_mode)
        tmp.chmod(default_mode(True))
    else:
        tmp.chmod(file_mode)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, directory: bool = False, manifest: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; move it into place only if the block succeeds.

    The temporary is named ``.<final name>.<random>.tmp``: a killed job leaves it behind, and the
    owner of the directory may remove such orphans (see :func:`remove_orphans`). ``manifest``
    (directories only): write :data:`MANIFEST_NAME` at the top just before publishing.
    """
    if manifest and not directory:
        raise ValueError("atomic_path: manifest=True needs directory=True")
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if manifest:
            write_manifest(tmp)
        _publish_modes(tmp, directory)
        if directory and final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: str | os.PathLike) -> Path:
    """Write ``directory/artifact_manifest.json``: size and sha256 of every regular file below ``directory``.

    Paths are relative POSIX paths; symlinks are not followed and the manifest does not list itself.
    """
    directory = Path(directory)
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = Path(root, name)
            rel = path.relative_to(directory).as_posix()
            if rel != MANIFEST_NAME and stat.S_ISREG(path.lstat().st_mode):
                files[rel] = {"size": path.lstat().st_size, "sha256": sha256_file(path)}
    target = directory / MANIFEST_NAME
    target.write_text(json.dumps({"format": MANIFEST_FORMAT, "algorithm": "sha256", "files": files},
                                 indent=2, sort_keys=True) + "\n")
    return target


_VERIFIED: set[tuple] = set()  # (top, manifest stat, each listed file's (path, size, mtime_ns)) verified
_DIGESTS: dict[str, tuple[int, int, str]] = {}  # resolved file -> (size, mtime_ns, sha256) verified


def _read_manifest(top: Path, rerun: str) -> dict[str, dict]:
    path = top / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
        version, files = data["format"], data["files"]
        entries = [(rel, int(e["size"]), str(e["sha256"])) for rel, e in files.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ArtifactError(f"{path}: unreadable artifact manifest ({type(error).__name__}: {error}); {rerun}") from error
    if version != MANIFEST_FORMAT:
        raise ArtifactError(f"{path}: manifest format {version!r}, this code reads format {MANIFEST_FORMAT}; {rerun}")
    bad = [rel for rel, _, _ in entries if rel.startswith("/") or ".." in rel.split("/")]
    if bad:
        raise ArtifactError(f"{path}: lists paths outside its directory: {bad}; {rerun}")
    return {rel: {"size": size, "sha256": digest} for rel, size, digest in entries}


def _verify_top(top: Path) -> None:
    """Check every file ``top``'s manifest lists (existence, size, then sha256) and stray weight files."""
    rerun = f"rerun the stage that writes {top}"
    files = _read_manifest(top, rerun)
    said = "the manifest written at save time says"
    stats = []
    for rel, entry in sorted(files.items()):
        path = top / rel
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ArtifactError(f"{path}: missing; the manifest written at save time lists it "
                                f"({entry['size']} bytes); {rerun}") from None
        if not stat.S_ISREG(st.st_mode):
            raise ArtifactError(f"{path}: not a regular file; {said} a {entry['size']}-byte file; {rerun}")
        if st.st_size != entry["size"]:
            raise ArtifactError(f"{path}: size {st.st_size} bytes, {said} {entry['size']} (truncated or replaced); {rerun}")
        stats.append((rel, st.st_size, st.st_mtime_ns))
    for folder in sorted({top} | {(top / rel).parent for rel in files}):
        for path in sorted(folder.iterdir()):
            if path.suffix in WEIGHT_SUFFIXES and path.relative_to(top).as_posix() not in files:
                raise ArtifactError(f"{path}: a weight file that the manifest written at save time does not list "
                                    f"(added after the save); remove it or {rerun}")
    mst = (top / MANIFEST_NAME).stat()
    key = (str(top.resolve()), mst.st_size, mst.st_mtime_ns, tuple(stats))
    if key in _VERIFIED:
        return
    for rel, size, mtime_ns in stats:
        found, expected = sha256_file(top / rel), files[rel]["sha256"]
        if found != expected:
            raise ArtifactError(f"{top / rel}: sha256 {found}, {said} {expected} (same size, {size} bytes: "
                                f"contents changed); {rerun}")
        _DIGESTS[str((top / rel).resolve())] = (size, mtime_ns, found)
    _VERIFIED.add(key)


def verify_artifact(directory: str | os.PathLike) -> bool:
    """Verify the saved artifact that holds ``directory``: True when verified, False when there is no manifest.

    The manifest is looked for in ``directory`` and in its parent (a training stage's output
    ``<tag>/`` holds ``adapter/``, ``model/`` and the manifest; callers pass ``<tag>/model`` or
    ``<tag>/adapter``); each one found is checked in full: every listed file (sibling directories
    included) exists with its size and sha256, and no listed directory holds an unlisted
    ``*.safetensors`` / ``*.bin``. Any difference is an :class:`ArtifactError` naming the file. A
    directory without a manifest (an external checkpoint, e.g. a downloaded Qwen2-VL-7B) is not
    verified. Results are cached per process, keyed by each file's size and mtime, so loading one
    directory twice hashes it once.
    """
    directory = Path(directory)
    tops = [top for top in dict.fromkeys((directory, directory.parent)) if (top / MANIFEST_NAME).is_file()]
    for top in tops:
        _verify_top(top)
    return bool(tops)


def verified_sha256(path: str | os.PathLike) -> str | None:
    """The sha256 of ``path`` if this process verified it against a manifest and its size and mtime are unchanged."""
    known = _DIGESTS.get(str(Path(path).resolve()))
    if known is None:
        return None
    st = Path(path).stat()
    return known[2] if (st.st_size, st.st_mtime_ns) == known[:2] else None


def remove_orphans(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporaries that killed writers left in ``directory`` (not below); return them.

    Only call this from the one process that owns ``directory`` (holds its lock): a live writer's
    temporary looks exactly like an orphan.
    """
    removed = []
    for path in sorted(Path(directory).glob(f".*{TMP_SUFFIX}")):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def write_parquet(table: pa.Table, path: str | os.PathLike, schema: pa.Schema | None = None) -> Path:
    """Write ``table`` atomically; when ``schema`` is given the table is cast to it first (fails loudly)."""
    if schema is not None:
        table = table.select(schema.names).cast(schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def read_parquet(path: str | os.PathLike, schema: pa.Schema | None = None) -> pa.Table:
    """Read a Parquet artifact and check it has ``schema`` (names and types), naming the file if not."""
    table = pq.read_table(path)
    if schema is not None and not table.schema.equals(schema, check_metadata=False):
        raise ValueError(
            f"{path}: artifact schema does not match the expected one.\n"
            f"expected:\n{schema}\nfound:\n{table.schema}"
        )
    return table


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    return Path(path)
