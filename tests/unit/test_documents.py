"""Uploads: keys, ids, types and sizes (domain/documents.py)."""

import pytest

from doctriage_core.domain import documents as d
from doctriage_core.errors import InvalidDocument


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("incoming/invoice/a+b.pdf", "incoming/invoice/a b.pdf"),
        ("incoming%2Finvoice%2Fa+b.pdf", "incoming/invoice/a b.pdf"),
        ("incoming/invoice/a%2Bb.pdf", "incoming/invoice/a+b.pdf"),
        ("incoming/invoice/50%25+off.pdf", "incoming/invoice/50% off.pdf"),
        ("incoming/invoice/r%C3%A9sum%C3%A9.pdf", "incoming/invoice/résumé.pdf"),
    ],
)
def test_event_keys_are_decoded(raw, decoded):
    assert d.decode_event_key(raw) == decoded


def test_document_id_is_deterministic_and_a_valid_execution_name():
    first = d.document_id_for("b", "incoming/invoice/x.pdf", "v1", '"etag"')
    assert first == d.document_id_for("b", "incoming/invoice/x.pdf", "v1", '"etag"')
    assert len(first) <= 80
    assert all(c.isalnum() or c in "-_" for c in first)


def test_a_new_version_is_a_new_document():
    key = "incoming/invoice/x.pdf"
    assert d.document_id_for("b", key, "v1", None) != d.document_id_for("b", key, "v2", None)
    assert d.document_id_for("b", key, None, "e1") != d.document_id_for("b", key, None, "e2")
    # quotes around an ETag do not make a new document
    assert d.document_id_for("b", key, None, '"e1"') == d.document_id_for("b", key, None, "e1")


@pytest.mark.parametrize(
    ("key", "doc_type"),
    [
        ("incoming/invoice/a.pdf", "invoice"),
        ("incoming/receipt/2024/05/a b.pdf", "receipt"),
        ("incoming/credit_note/x.png", "credit_note"),
    ],
)
def test_doc_type_from_key(key, doc_type):
    assert d.doc_type_from_key(key) == doc_type


@pytest.mark.parametrize(
    "key",
    [
        "uploads/invoice/a.pdf",
        "incoming/a.pdf",
        "incoming/invoice/",
        "incoming//a.pdf",
        "incoming/Invoice Type/a.pdf",
        "incoming/../a.pdf",
        # "$" in a pattern also matches before a trailing newline: the whole name must match.
        "incoming/invoice\n/a.pdf",
        "incoming/invoice\r\n/a.pdf",
        "incoming/" + "a" * 65 + "/a.pdf",
    ],
)
def test_keys_outside_incoming_doc_type_are_bad(key):
    with pytest.raises(InvalidDocument) as caught:
        d.doc_type_from_key(key)
    assert caught.value.reason == "bad_key"


def test_content_type_by_extension():
    assert d.content_type_for("incoming/invoice/A.PDF") == "application/pdf"
    assert d.content_type_for("incoming/invoice/scan.jpeg") == "image/jpeg"
    with pytest.raises(InvalidDocument) as caught:
        d.content_type_for("incoming/invoice/notes.txt")
    assert caught.value.reason == "unsupported_type"
    assert ".pdf" in str(caught.value)


@pytest.mark.parametrize(
    ("size", "reason"), [(0, "empty_file"), (d.MAX_FILE_BYTES + 1, "file_too_large")]
)
def test_size_limits(size, reason):
    with pytest.raises(InvalidDocument) as caught:
        d.check_size(size)
    assert caught.value.reason == reason


def test_size_limits_accept_the_boundaries():
    d.check_size(1)
    d.check_size(d.MAX_FILE_BYTES)


def test_content_must_match_extension():
    d.check_content("a.pdf", b"%PDF-1.7\n")
    d.check_content("a.csv", b"anything,goes")
    with pytest.raises(InvalidDocument) as caught:
        d.check_content("a.pdf", b"MZ\x90\x00 executable")
    assert caught.value.reason == "unsupported_type"


def test_reprocess_of_trusts_only_a_document_ids_shape():
    from doctriage_core.domain.documents import reprocess_of

    valid = "doc-" + "a" * 40
    assert reprocess_of({"reprocess-of": valid}) == valid
    assert reprocess_of({"reprocess-of": f" {valid} "}) == valid
    for bad in ("", "doc-1", "<script>", valid + "0", "DOC-" + "a" * 40):
        assert reprocess_of({"reprocess-of": bad}) is None
    assert reprocess_of({}) is None
