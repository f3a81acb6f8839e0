"""A streaming multipart/form-data request body: how a document travels to Datalab.

Written here rather than with httpx's ``files=`` so that a known size gives an exact
Content-Length (some servers and proxies refuse chunked uploads) and a stream that is shorter or
longer than announced is caught before it corrupts the request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import BinaryIO

from doctriage_core.errors import InvalidDocument

CHUNK_SIZE = 64 * 1024


class MultipartBody:
    """A multipart/form-data body that reads the file in chunks while it is being sent."""

    def __init__(
        self,
        *,
        fields: dict[str, str],
        file_field: str,
        filename: str,
        content_type: str,
        stream: BinaryIO,
        size: int | None,
    ) -> None:
        boundary = os.urandom(16).hex()
        self.content_type = f"multipart/form-data; boundary={boundary}"
        parts = [
            _part(boundary, _param("name", name)) + value.encode() + b"\r\n"
            for name, value in fields.items()
        ]
        disposition = f"{_param('name', file_field)}; {_param('filename', filename)}"
        parts.append(_part(boundary, disposition, content_type))
        head = b"".join(parts)
        self._head = head
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self._stream = stream
        self._size = size
        self.content_length = None if size is None else len(head) + size + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        sent = 0
        while chunk := self._stream.read(CHUNK_SIZE):
            sent += len(chunk)
            if self._size is not None and sent > self._size:
                break
            yield bytes(chunk)
        if self._size is not None and sent != self._size:
            raise InvalidDocument(
                f"the document stream did not match its announced size of {self._size} bytes",
                reason="size_mismatch",
            )
        yield self._tail


def _part(boundary: str, disposition: str, content_type: str | None = None) -> bytes:
    header = f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n"
    if content_type is not None:
        header += f"Content-Type: {content_type}\r\n"
    return (header + "\r\n").encode()


def _param(name: str, value: str) -> str:
    # Same escaping as browsers (HTML5) and httpx: quotes, backslashes, CR/LF cannot break out.
    escaped = re.sub(
        r'["\\\x00-\x1f]',
        lambda m: "\\\\" if m.group() == "\\" else f"%{ord(m.group()):02X}",
        value,
    )
    return f'{name}="{escaped}"'
