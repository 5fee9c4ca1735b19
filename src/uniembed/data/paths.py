"""Keep every data path inside its root (docs/curation.md: a record names files of its own source).

A record's path (M-BEIR ``img_path``, MMEB ``*_image_path``, a caption's ``image``) is joined to
its source's root as the public loaders do (``os.path.join(root, path)``), then resolved with
symlinks followed. A path that lands outside the resolved root (``../../x.png``, an absolute path
elsewhere, a symlink pointing out) is quarantined as ``path_outside_root`` and never read. The root
itself may be a symlink: it is resolved too.
"""
from __future__ import annotations

import os

PATH_OUTSIDE_ROOT = "path_outside_root"


class RootedPaths:
    """Join record paths to ``root`` and check them.

    Per folder the resolved path and the names of its symlinks are cached (one ``scandir``), so a
    million paths cost a million dictionary look-ups, not a million ``lstat`` calls.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = os.fspath(root)
        self.real_root = os.path.realpath(self.root)
        self._prefix = self.real_root.rstrip(os.sep) + os.sep
        self._folders: dict[str, tuple[str, frozenset[str] | None]] = {}

    def _folder(self, head: str) -> tuple[str, frozenset[str] | None]:
        """(resolved folder, names of its symlinks; None when it cannot be listed)."""
        real = os.path.realpath(head)
        try:
            with os.scandir(real) as entries:
                links = frozenset(e.name for e in entries if e.is_symlink())
        except OSError:
            links = None
        self._folders[head] = (real, links)
        return real, links

    def resolve(self, path: str) -> tuple[str, tuple[str, str] | None]:
        """``(joined path, None)`` when ``path`` resolves inside the root, else ``(joined, problem)``."""
        joined = os.path.join(self.root, path)
        head, tail = os.path.split(joined)
        if tail in ("", ".", ".."):
            real = os.path.realpath(joined)
        else:
            real_head, links = self._folders.get(head) or self._folder(head)
            real = os.path.join(real_head, tail)
            is_link = (tail in links) if links is not None else os.path.islink(real)
            if is_link:
                real = os.path.realpath(real)
        if real == self.real_root or real.startswith(self._prefix):
            return joined, None
        return joined, (PATH_OUTSIDE_ROOT, f"{path!r} resolves to {real}, outside the root {self.real_root}")
