"""Sample frames that lossless containers declare in their headers (WAV, RF64, Wave64, AIFF/AIFC, FLAC, CAF),
read directly because FFmpeg clamps WAV, Wave64 and CAF durations to the bytes present, hiding truncation."""
from __future__ import annotations

import struct
from typing import BinaryIO, Callable, Dict, Iterator, Optional, Tuple

_W64_RIFF = b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00"
_MAX_CHUNKS = 64


def _chunks(handle: BinaryIO, id_size: int, size_format: str, align: int, size_includes_header: bool = False
            ) -> Iterator[Tuple[bytes, int]]:
    """``(chunk id, body size)`` of consecutive chunks from the current position; the caller may read up to
    the body's size before asking for the next one."""
    head = id_size + struct.calcsize(size_format)
    for _ in range(_MAX_CHUNKS):
        start = handle.tell()
        header = handle.read(head)
        if len(header) < head:
            return
        ident, size = header[:id_size], struct.unpack(size_format, header[id_size:])[0]
        body = size - head if size_includes_header else size
        if body < 0:
            return
        yield ident, body
        handle.seek(start + head + body + (-(head + body) % align if align > 1 else 0))


def _riff(handle: BinaryIO) -> Optional[int]:
    head = handle.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    align, ds64_data = 0, None
    for ident, size in _chunks(handle, 4, "<I", 2):
        if ident == b"ds64":  # RF64: 64-bit sizes (riff, data, sample count)
            body = handle.read(24)
            if len(body) == 24:
                ds64_data = struct.unpack("<QQQ", body)[1]
        elif ident == b"fmt ":
            body = handle.read(16)
            if len(body) < 16:
                return None
            align = struct.unpack("<H", body[12:14])[0]
        elif ident == b"data":
            if size == 0xFFFFFFFF and ds64_data is not None:
                size = ds64_data
            if not align or size in (0, 0xFFFFFFFF):
                return None
            return size // align
    return None


def _wave64(handle: BinaryIO) -> Optional[int]:
    head = handle.read(40)
    if len(head) < 40 or head[:16] != _W64_RIFF or head[24:28] != b"wave":
        return None
    align = 0
    for ident, size in _chunks(handle, 16, "<Q", 8, size_includes_header=True):
        if ident[:4] == b"fmt ":
            body = handle.read(16)
            if len(body) < 16:
                return None
            align = struct.unpack("<H", body[12:14])[0]
        elif ident[:4] == b"data":
            return size // align if align and size else None
    return None


def _aiff(handle: BinaryIO) -> Optional[int]:
    head = handle.read(12)
    if len(head) < 12 or head[:4] != b"FORM" or head[8:12] not in (b"AIFF", b"AIFC"):
        return None
    for ident, _ in _chunks(handle, 4, ">I", 2):
        if ident == b"COMM":
            body = handle.read(6)
            return struct.unpack(">I", body[2:6])[0] if len(body) == 6 else None
    return None


def _flac(handle: BinaryIO) -> Optional[int]:
    head = handle.read(10)
    if head[:3] == b"ID3" and len(head) == 10:  # an ID3v2 tag before the stream
        handle.seek(10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10])))
        head = handle.read(4)
    else:
        handle.seek(4)
        head = head[:4]
    if head != b"fLaC":
        return None
    block = handle.read(4 + 18)
    if len(block) < 22 or block[0] & 0x7F != 0:  # STREAMINFO comes first
        return None
    total = int.from_bytes(block[4 + 10: 4 + 18], "big") & ((1 << 36) - 1)
    return total or None


def _caf(handle: BinaryIO) -> Optional[int]:
    head = handle.read(8)
    if len(head) < 8 or head[:4] != b"caff":
        return None
    per_packet = bytes_per_packet = 0
    valid = None
    for ident, size in _chunks(handle, 4, ">q", 1):
        if ident == b"desc":
            body = handle.read(32)
            if len(body) < 32:
                return None
            bytes_per_packet, per_packet = struct.unpack(">II", body[16:24])
        elif ident == b"pakt":
            body = handle.read(16)
            if len(body) == 16:
                valid = struct.unpack(">q", body[8:16])[0]
        elif ident == b"data":
            if valid is not None:
                return valid
            if size < 4 or not bytes_per_packet or not per_packet:
                return None
            return (size - 4) // bytes_per_packet * per_packet
    return valid


_READERS: Dict[str, Callable[[BinaryIO], Optional[int]]] = {
    "wav": _riff, "w64": _wave64, "aiff": _aiff, "flac": _flac, "caf": _caf}
#: FFmpeg demuxers whose headers this module reads.
FORMATS = frozenset(_READERS)


def declared_frames(path: str, demuxer: str) -> Optional[int]:
    """Sample frames declared by the header of ``path``, read as FFmpeg's ``demuxer`` (``'wav'``...); ``None``
    when the header is not one of these, is damaged, or leaves the length open (the 0 / 0xFFFFFFFF
    placeholders of streaming WAV writers, a FLAC total of 0, a CAF data size of -1)."""
    reader = _READERS.get(demuxer)
    if reader is None:
        return None
    try:
        with open(path, "rb") as handle:
            return reader(handle)
    except (OSError, struct.error, ValueError):
        return None
