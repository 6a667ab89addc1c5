"""Serving a stored file over HTTP: whole, or the one byte range a media player asks for.

Django's FileResponse always answers 200 with the whole file. Chromium plays a short MP4 that way,
but a player seeks by asking for byte ranges, and Safari does not play a <video> at all from a
server that does not answer them with 206 Partial Content. One range per request is all players
ask for; anything else (several ranges, If-Range, a malformed header) gets the whole file, which
RFC 9110 allows. A position is 1 to 18 ASCII digits: `\\d` would let in digits of other scripts,
which int() reads, and int() refuses more than 4,300 digits, which a header can hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

_RANGE = re.compile(r"^bytes=(?P<start>[0-9]{0,18})-(?P<end>[0-9]{0,18})\Z")
CHUNK = 64 * 1024


def file_response(request: HttpRequest, path: Path, *, content_type: str) -> HttpResponseBase:
    """The file at ``path``: 206 with the asked byte range, 416 for a range past its end, else
    200 with all of it. Every answer says ``Accept-Ranges: bytes``."""
    size = path.stat().st_size
    match = _RANGE.match(request.headers.get("Range", "").replace(" ", ""))
    if match is None or "If-Range" in request.headers or not (match["start"] or match["end"]):
        response: HttpResponseBase = FileResponse(path.open("rb"), content_type=content_type)
    elif not match["start"]:  # "bytes=-N": the last N bytes
        response = _partial(path, max(0, size - int(match["end"])), size - 1, size, content_type)
    else:
        start = int(match["start"])
        end = min(int(match["end"]), size - 1) if match["end"] else size - 1
        if start >= size or start > end:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
        else:
            response = _partial(path, start, end, size, content_type)
    response["Accept-Ranges"] = "bytes"
    return response


def _partial(path: Path, start: int, end: int, size: int, content_type: str) -> HttpResponseBase:
    if size == 0 or end < start:  # an empty file has no byte to give
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    length = end - start + 1
    response = StreamingHttpResponse(_chunks(path, start, length), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(length)
    return response


def _chunks(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as file:
        file.seek(start)
        while length > 0:
            data = file.read(min(CHUNK, length))
            if not data:
                return
            length -= len(data)
            yield data
