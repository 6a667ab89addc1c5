"""A manifest moved from one file to another, as anyone can do it with a hex editor: a PNG's caBX
chunk, a JPEG's APP11 segments (the JUMBF manifest store), taken from one signed file and put in
place of another file's, or into a file that has none. The result carries intact credentials
(trusted signer, valid claim signature) whose hard binding no longer matches the pixels."""

from __future__ import annotations

import struct

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_APP11 = 0xEB
_SOS = 0xDA


def png_manifest_transplant(*, donor: bytes, target: bytes) -> bytes:
    """``target``'s pixels with ``donor``'s caBX chunk: in place of target's own, or after its IHDR."""
    manifest = b"".join(chunk for kind, chunk in _png_chunks(donor) if kind == b"caBX")
    assert manifest, "the donor carries no manifest"
    chunks = _png_chunks(target)
    kept = [chunk for kind, chunk in chunks if kind != b"caBX"]
    at = next((i for i, (kind, _) in enumerate(chunks) if kind == b"caBX"), 1)  # chunk 0 is IHDR
    return _PNG_SIGNATURE + b"".join(kept[:at]) + manifest + b"".join(kept[at:])


def jpeg_manifest_transplant(*, donor: bytes, target: bytes) -> bytes:
    """``target``'s scan with ``donor``'s APP11 segments: in place of target's own, or after its APP0."""
    segments, _ = _jpeg_segments(donor)
    manifest = b"".join(segment for marker, segment in segments if marker == _APP11)
    assert manifest, "the donor carries no manifest"
    segments, scan = _jpeg_segments(target)
    kept = [segment for marker, segment in segments if marker != _APP11]
    at = next((i for i, (marker, _) in enumerate(segments) if marker == _APP11), 1)  # segment 0 is APP0
    return b"\xff\xd8" + b"".join(kept[:at]) + manifest + b"".join(kept[at:]) + scan


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk: length, type, body and CRC) for each chunk."""
    assert data.startswith(_PNG_SIGNATURE)
    chunks, pos = [], len(_PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos : pos + 12 + length]))
        pos += 12 + length
    return chunks


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """(marker, whole segment) for each segment before the first scan; and the rest, from SOS on."""
    assert data.startswith(b"\xff\xd8")
    segments, pos = [], 2
    while data[pos + 1] != _SOS:
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segments.append((data[pos + 1], data[pos : pos + 2 + length]))
        pos += 2 + length
    return segments, data[pos:]
