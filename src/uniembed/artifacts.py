"""Atomic artifact writing: a killed job never leaves a half-written file a later stage would trust.

Every writer goes through :func:`atomic_path`: write to a temporary sibling, then ``os.replace``
(atomic on POSIX within one filesystem). The artifact gets the mode a plain ``open()`` /
``mkdir()`` would give it (0666 / 0777 masked by the umask), not the private 0600 / 0700 of the
temporary, so colleagues on shared storage can read results when the umask allows it.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

TMP_SUFFIX = ".tmp"


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
def atomic_path(final: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; move it into place only if the block succeeds.

    The temporary is named ``.<final name>.<random>.tmp``: a killed job leaves it behind, and the
    owner of the directory may remove such orphans (see :func:`remove_orphans`).
    """
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
