"""multipart/form-data parsing for the submit endpoint (the stdlib ``cgi`` module is gone)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message


class MultipartError(ValueError):
    pass


@dataclass(frozen=True)
class Part:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _header_params(value: str, header: str = "content-type") -> Message:
    # email.message.Message knows RFC 2231 parameters and quoting; borrow its parser.
    message = Message()
    message[header] = value
    return message


def parse_form(content_type: str, body: bytes) -> dict[str, Part]:
    """Form parts by field name (the first one wins if a name repeats)."""
    params = _header_params(content_type)
    if params.get_content_type() != "multipart/form-data":
        raise MultipartError("expected multipart/form-data")
    boundary = params.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise MultipartError("multipart boundary missing")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    parts: dict[str, Part] = {}
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise MultipartError("malformed part")
        headers: dict[str, str] = {}
        for raw in head.split(b"\r\n"):
            key, colon, value = raw.decode("utf-8", errors="replace").partition(":")
            if colon:
                headers[key.strip().lower()] = value.strip()
        disposition = _header_params(headers.get("content-disposition", ""), "content-disposition")
        name = disposition.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        parts.setdefault(
            name,
            Part(
                name=name,
                data=data,
                filename=disposition.get_filename(),
                content_type=headers.get("content-type"),
            ),
        )
    return parts
