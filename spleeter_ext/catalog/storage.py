"""Files on any filesystem Beam supports: local paths are used in place; remote ones (gs://, s3://...)
are copied to a worker's scratch folder in chunks, and stems are uploaded under a temporary name that
is renamed when the upload is complete."""
from __future__ import annotations

import os
import shutil
import uuid
from typing import Dict, Iterable

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ..errors import AudioError, SpleeterExtError

CHUNK = 8 << 20  # bytes per read or write when copying


def is_remote(path: str) -> bool:
    """True for a URI Beam serves through a filesystem other than the local one."""
    return FileSystems.get_scheme(path) not in (None, "file")


def normalise(path: str) -> str:
    """Local paths made absolute (workers need not share the launcher's working folder); URIs kept."""
    return path if is_remote(path) else os.path.abspath(os.path.expanduser(path))


def identity(path: str) -> str:
    """The key under which two spellings of one file compare equal (symbolic links resolved locally)."""
    return path if is_remote(path) else os.path.realpath(path)


def check_reachable(path: str) -> None:
    """Raise a one-line error when no installed Beam filesystem serves ``path``'s scheme."""
    if is_remote(path):
        try:
            FileSystems.get_filesystem(path)
        except ValueError:
            scheme = FileSystems.get_scheme(path)
            hint = "pip install 'spleeter-ext[dataflow]'" if scheme == "gs" else f"install Beam's extra for {scheme}://"
            raise SpleeterExtError(f"{path}: no Beam filesystem for {scheme}:// is installed; {hint}") from None


def join(base: str, relative: str) -> str:
    return FileSystems.join(base, relative) if is_remote(base) else os.path.normpath(os.path.join(base, relative))


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def open_binary(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _copy(src, dst) -> None:
    shutil.copyfileobj(src, dst, CHUNK)


def download(uri: str, local: str) -> str:
    """Copy ``uri`` to the local file ``local``; a missing or unreadable input raises
    :class:`AudioError` worded as ``separate`` words it."""
    if not exists(uri):
        raise AudioError(f"{uri}: file not found; check the path")
    os.makedirs(os.path.dirname(local), exist_ok=True)
    try:
        with open_binary(uri) as src, open(local, "wb") as dst:
            _copy(src, dst)
    except Exception as exc:  # OSError, or the error type of Beam's filesystem
        raise AudioError(f"{uri}: cannot read ({exc}); check the path and its permissions") from None
    return local


def temporary_name(path: str) -> str:
    """A sibling of ``path`` that no other writer uses, hidden from folder listings."""
    head, tail = FileSystems.split(path) if is_remote(path) else os.path.split(path)
    name = f".{tail}.part-{uuid.uuid4().hex[:12]}"
    return FileSystems.join(head, name) if is_remote(path) else os.path.join(head, name)


def upload(local: str, uri: str) -> None:
    """Copy the local file to ``uri`` under a temporary name, then rename it to ``uri``."""
    tmp = temporary_name(uri)
    try:
        with open(local, "rb") as src, FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as dst:
            _copy(src, dst)
        FileSystems.rename([tmp], [uri])
    except BaseException:
        try:
            FileSystems.delete([tmp])
        except Exception:  # nothing was created, or the filesystem is gone: nothing to clean
            pass
        raise


def read_text_lines(path: str) -> Iterable[str]:
    """Lines of a UTF-8 text file (a BOM is dropped), streamed."""
    import io

    with open_binary(path) as raw:
        yield from io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def stage_model(params: str, local_root: str) -> str:
    """A model directory given as a URI, copied under ``local_root``; any other descriptor unchanged."""
    if not is_remote(params):
        return params
    base = params.rstrip("/")
    target = os.path.join(local_root, "model")
    found: Dict[str, str] = {}
    try:
        for match in FileSystems.match([base + "/**"]):
            for meta in match.metadata_list:
                found[meta.path] = os.path.join(target, os.path.relpath(meta.path[len(base) + 1:]))
    except Exception as exc:
        raise SpleeterExtError(f"{params}: cannot list the model directory ({exc}); check the URI") from None
    if not any(p.endswith("/config.json") for p in found):
        raise SpleeterExtError(f"{params}: a model directory must hold config.json (written by 'spleeter-ext train')")
    for uri, local in found.items():
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open_binary(uri) as src, open(local, "wb") as dst:
            _copy(src, dst)
    return target
