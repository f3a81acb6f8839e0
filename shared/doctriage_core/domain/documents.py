"""Uploaded documents: where they come from, what they are called, whether we can send them.

Pure: works on names, sizes and the first bytes of an object, never on AWS itself.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote_plus

from doctriage_core.errors import InvalidDocument

# The bucket's three rooms: uploads, extraction schemas, our copies of Datalab's results.
INCOMING_PREFIX = "incoming/"
SCHEMA_PREFIX = "schemas/"
RESULTS_PREFIX = "results/"
# S3 user metadata (x-amz-meta-human-review-threshold): an upload's own review threshold.
UPLOAD_THRESHOLD_METADATA = "human-review-threshold"
# S3 user metadata (x-amz-meta-reprocess-of) a reprocess puts on its copy: the failed document it
# sends again, named on the new record's source.
REPROCESS_OF_METADATA = "reprocess-of"
_DOCUMENT_ID = re.compile(r"doc-[0-9a-f]{40}")
# The intake message attribute saying when the first copy of a re-sent message was sent: the
# retry window for transient failures counts from there (workflow/intake.py).
FIRST_SENT_ATTRIBUTE = "doctriage-first-sent"
MAX_FILE_BYTES = 200 * 1024 * 1024  # Datalab's per-file limit
_DOC_TYPE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # fullmatch: "$" also matches before "\n"

# Extension -> MIME type, Datalab's accepted list (datalab-api.md, SDK list).
SUPPORTED_TYPES: dict[str, str] = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".tiff": "image/tiff",
    ".tif": "image/tiff",
    ".webp": "image/webp",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".doc": "application/msword",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
    ".xltx": "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
    ".xls": "application/vnd.ms-excel",
    ".csv": "text/csv",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".ppt": "application/vnd.ms-powerpoint",
    ".html": "text/html",
    ".epub": "application/epub+zip",
}

# Leading bytes that each binary family must start with; text formats (csv, html) have none.
_ZIP = (b"PK\x03\x04",)
_OLE = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",)
_MAGIC: dict[str, tuple[bytes, ...]] = {
    ".pdf": (b"%PDF-",),
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".gif": (b"GIF87a", b"GIF89a"),
    ".tiff": (b"II*\x00", b"MM\x00*"),
    ".tif": (b"II*\x00", b"MM\x00*"),
    ".webp": (b"RIFF",),
    ".docx": _ZIP,
    ".xlsx": _ZIP,
    ".xlsm": _ZIP,
    ".xltx": _ZIP,
    ".pptx": _ZIP,
    ".ods": _ZIP,
    ".epub": _ZIP,
    ".doc": _OLE,
    ".xls": _OLE,
    ".ppt": _OLE,
}
SNIFF_BYTES = 16


@dataclass(frozen=True)
class DocumentRef:
    """One uploaded object version: the unit the whole pipeline is about."""

    document_id: str
    bucket: str
    key: str
    doc_type: str | None
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    reprocess_of: str | None = None  # the failed document this upload's copy sends again

    def source(self) -> dict[str, Any]:
        """The record's ``source`` object."""
        data = asdict(self)
        source = {k: data[k] for k in ("bucket", "key", "version_id", "etag", "size")}
        return source | ({"reprocess_of": self.reprocess_of} if self.reprocess_of else {})

    def to_state(self) -> dict[str, Any]:
        state = asdict(self)
        if state["reprocess_of"] is None:
            del state["reprocess_of"]  # only a reprocess's copy carries it
        return state

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> DocumentRef:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


def reprocess_of(metadata: Mapping[str, str]) -> str | None:
    """The document a copy reprocesses, from its S3 metadata: a document id, else None (metadata
    anyone uploading may set: only its shape is trusted, and it only names, never decides)."""
    value = (metadata.get(REPROCESS_OF_METADATA) or "").strip()
    return value if _DOCUMENT_ID.fullmatch(value) else None


def decode_event_key(raw_key: str) -> str:
    """S3 event keys are URL-encoded with ``+`` for spaces (and ``%2F`` from some emulators)."""
    return unquote_plus(raw_key)


def document_id_for(bucket: str, key: str, version_id: str | None, etag: str | None) -> str:
    """Deterministic id of one object version; also a valid Step Functions execution name.

    A re-upload of the same key is a new version (or, unversioned, a new ETag) and so a new
    document; the same event delivered twice gives the same id.
    """
    identity = version_id or (etag or "").strip('"') or "unversioned"
    digest = hashlib.sha256(f"{bucket}\n{key}\n{identity}".encode()).hexdigest()
    return f"doc-{digest[:40]}"


def doc_type_from_key(key: str) -> str:
    """``incoming/<doc_type>/<any path>`` -> ``<doc_type>``, or InvalidDocument(bad_key)."""
    if not key.startswith(INCOMING_PREFIX):
        raise InvalidDocument(f"key {key!r} is not under {INCOMING_PREFIX}", reason="bad_key")
    parts = key[len(INCOMING_PREFIX) :].split("/", 1)
    if len(parts) != 2 or not parts[1] or parts[1].endswith("/"):
        raise InvalidDocument(
            f"key {key!r} must look like incoming/<doc_type>/<file name>", reason="bad_key"
        )
    doc_type = parts[0]
    if not _DOC_TYPE.fullmatch(doc_type):
        raise InvalidDocument(
            f"document type {doc_type!r} must be lower-case letters, digits, '-' or '_'",
            reason="bad_key",
        )
    return doc_type


def schema_key_for(doc_type: str) -> str:
    return f"{SCHEMA_PREFIX}{doc_type}.json"


def result_key_for(document_id: str) -> str:
    """Where the poll step keeps its copy of a document's raw Datalab result."""
    return f"{RESULTS_PREFIX}{document_id}/datalab-result.json"


def cells_key_for(document_id: str) -> str:
    """Where evaluate keeps a record's cells when the record would not fit in DynamoDB."""
    return f"{RESULTS_PREFIX}{document_id}/cells.json"


def content_type_for(key: str) -> str:
    """The MIME type Datalab gets, from the extension; InvalidDocument(unsupported_type) if none."""
    ext = posixpath.splitext(key.lower())[1]
    if ext not in SUPPORTED_TYPES:
        supported = " ".join(sorted(SUPPORTED_TYPES))
        raise InvalidDocument(
            f"file type {ext or '(no extension)'!r} is not supported; supported: {supported}",
            reason="unsupported_type",
        )
    return SUPPORTED_TYPES[ext]


def check_size(size: int) -> None:
    if size <= 0:
        raise InvalidDocument("the file is empty (0 bytes)", reason="empty_file")
    if size > MAX_FILE_BYTES:
        raise InvalidDocument(
            f"the file is {size} bytes; Datalab accepts at most {MAX_FILE_BYTES} bytes",
            reason="file_too_large",
        )


def check_content(key: str, head: bytes) -> None:
    """The first bytes must match the extension's format (a renamed .exe is not a PDF)."""
    ext = posixpath.splitext(key.lower())[1]
    expected = _MAGIC.get(ext)
    if expected and not head.startswith(expected):
        raise InvalidDocument(
            f"the content does not look like a {ext} file", reason="unsupported_type"
        )
