"""Crash-safe file output: everything is written to a temporary path and renamed into place.

A rename within one filesystem is atomic, so a reader (or a later DVC stage) sees either the old
complete file or the new complete one, never a partial write.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hrnet.errors import DataError, MissingFileError


def _process_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it, so it is put straight back
    os.umask(mask)
    return mask


# mkstemp and mkdtemp create their paths private (0600, 0700) whatever the umask. The outputs they
# become (metrics, predictions, packages) get the permissions any other new file would, so that a team
# sharing a project folder or a model store can read them.
_UMASK = _process_umask()
_FILE_MODE = 0o666 & ~_UMASK
_DIR_MODE = 0o777 & ~_UMASK


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary sibling of ``path``; on success it replaces ``path``, on error it vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(_FILE_MODE)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def replace_directory(source: str | Path, target: str | Path) -> None:
    """Moves the finished directory ``source`` to ``target``, replacing any previous ``target``."""
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yields an empty temporary directory that replaces ``path`` (a directory) once filled."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(_DIR_MODE)
    try:
        yield tmp
        replace_directory(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def path_reference(target: str | Path, index_file: str | Path, anchor: str | Path | None = None) -> str:
    """How an index file refers to ``target``.

    Relative to the index's folder when ``target`` lies under ``anchor`` (the project: the reference
    then survives moving or copying the whole tree, as ``dvc exp run --temp`` does), else absolute
    (data outside the project, e.g. a dataset at an absolute ``data.root``, stays where it is).
    ``anchor`` None: always relative.
    """
    target = Path(target).resolve()
    if anchor is None or target.is_relative_to(Path(anchor).resolve()):
        return os.path.relpath(target, Path(index_file).parent.resolve())
    return str(target)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_bytes(path: str | Path, what: str, expected: str | None = None) -> bytes:
    """The bytes of the file at ``path``: ``MissingFileError("<path>: <what> not found")`` when it is
    absent, a one-line ``DataError`` naming the OS's reason when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise MissingFileError(f"{path}: {what} not found") from None
    except OSError as exc:
        tail = f" ({expected})" if expected else ""
        raise DataError(f"{path}: cannot read the {what} ({exc.strerror or exc}){tail}") from None


def read_json(path: Path, missing: str) -> Any:
    """The parsed JSON at ``path``; a missing file raises ``MissingFileError("<path>: <missing>")``,
    invalid JSON or text that is not UTF-8 a one-line ``DataError`` naming the file and the place."""
    if not path.is_file():
        raise MissingFileError(f"{path}: {missing}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason})") from None


def read_yaml(path: Path, missing: str, error: type[Exception] = DataError) -> Any:
    """The parsed YAML at ``path``; a missing file raises ``MissingFileError("<path>: <missing>")``,
    invalid YAML a one-line ``error`` naming the file and the first line of the parser's message."""
    import yaml

    if not path.is_file():
        raise MissingFileError(f"{path}: {missing}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
