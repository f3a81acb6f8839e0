"""The honest extractor: every schema property is read from the document's own text lines.

A value is found through a label printed beside it ("Invoice Number: INV-1042", or label and value
in separate columns of one line) that matches the property's name, title or description. Arrays of
objects are read from a table whose header names the item properties, each cell a result of its
own citing the Span blocks it was read from (the server sends them in the shape
``EmulatorConfig.nested_scores`` asks for). Enum properties without a label are classified from
the words the document uses (its title first). Scores follow Datalab's rubric: 5 a clear label
(a cell: a clear column header) and a value valid for the schema; 3-4 a loose label or a value
that had to be rewritten; 2 a value that breaks the schema; 1 nothing found.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .document import Document, Line, Span, line_spans

EXACT, PARTIAL, LOOSE = 3, 2, 1
_LABEL_SCORE = {EXACT: 5, PARTIAL: 4, LOOSE: 3}
_QUALITY_RANK = {"clean": 3, "coerced": 2, "invalid": 1, "empty": 0}
_FUZZY_RATIO = 0.8
_SYNONYMS = {"no": "number", "num": "number", "nbr": "number", "#": "number", "qty": "quantity"}
# Sharing only one of these words with a property is too weak to count as a partial match.
_GENERIC = frozenset({"name", "number", "date", "amount", "value", "id", "type", "code"})
_TABLE_END = frozenset({"total", "subtotal", "tax", "balance", "grand", "notes"})
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%d %B %Y",
    "%d %b %Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
)
_CURRENCY_AFFIX = re.compile(r"^(?:[A-Z]{3}|[$€£¥])\s*|\s*(?:[A-Z]{3}|[$€£¥])$")
_US_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_EU_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class FieldResult:
    value: Any
    citations: list[str]
    score: int
    reasoning: str
    # A table: one mapping per row, column -> its cell's own result (citing the cell's Span blocks).
    cells: list[dict[str, FieldResult]] | None = None


@dataclass(frozen=True)
class Candidate:
    """A label and the text printed beside it on one line."""

    label: str
    value: str
    line: Line
    order: int


def words(text: str) -> tuple[str, ...]:
    """Normalised words of a label or property name: 'InvoiceNo.' and 'invoice_number' agree."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ").lower()
    return tuple(_SYNONYMS.get(w, w) for w in re.findall(r"[a-z0-9]+|#", text))


def label_match(label: str, name: str, prop: dict[str, Any]) -> int:
    """How well ``label`` names the property: EXACT, PARTIAL, LOOSE or 0."""
    found = words(label)
    if not found:
        return 0
    forms = [f for f in (words(name), words(str(prop.get("title", "")))) if f]
    if found in forms:
        return EXACT
    rank = 0
    for form in forms:
        mine, theirs = set(found), set(form)
        if mine < theirs or theirs < mine:
            rank = max(rank, PARTIAL if (mine & theirs) - _GENERIC else LOOSE)
    if rank:
        return rank
    text = " ".join(found)
    targets = [" ".join(f) for f in forms] + [" ".join(words(str(prop.get("description", ""))))]
    ratio = max(difflib.SequenceMatcher(None, text, t).ratio() for t in targets if t)
    return LOOSE if ratio >= _FUZZY_RATIO else 0


def schema_type(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in prop else "string"


def parse_number(raw: str) -> tuple[float | None, str]:
    """'$1,234.50' -> (1234.5, 'clean'); '1.234,50' -> (1234.5, 'coerced'); 'TBD' -> (None, ...)."""
    text = _CURRENCY_AFFIX.sub("", raw.strip()).strip()
    quality = "clean"
    if text.startswith("(") and text.endswith(")"):
        text, quality = "-" + text[1:-1], "coerced"
    if _US_NUMBER.fullmatch(text):
        return float(text.replace(",", "")), quality
    if _EU_NUMBER.fullmatch(text):
        return float(text.replace(".", "").replace(",", ".")), "coerced"
    return None, "invalid"


def parse_date(raw: str) -> str | None:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.datetime.strptime(raw, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def coerce(raw: str, prop: dict[str, Any]) -> tuple[Any, str, str]:
    """Read ``raw`` as the property's type: (value, quality, note).

    Quality is 'clean', 'coerced' (had to be rewritten), 'invalid' (the raw text is returned so a
    reviewer sees what was printed) or 'empty'.
    """
    raw = raw.strip()
    if not raw:
        return None, "empty", ""
    kind = schema_type(prop)
    if kind in ("number", "integer"):
        return _coerce_number(raw, kind, prop)
    if kind == "boolean":
        return _coerce_boolean(raw)
    if kind == "array":
        parts = [coerce(p, prop.get("items", {})) for p in re.split(r"[;,]", raw) if p.strip()]
        worst = min((q for _, q, _ in parts), key=_QUALITY_RANK.__getitem__, default="empty")
        notes = "; ".join(n for _, _, n in parts if n)
        return [v for v, _, _ in parts], worst, notes
    enum = prop.get("enum")
    if enum:
        hit = next((e for e in enum if str(e).lower() == raw.lower()), None)
        if hit is None:
            return raw, "invalid", f"it is not one of {', '.join(map(str, enum))}"
        return hit, "clean", ""
    return _coerce_string(raw, prop)


def _coerce_boolean(raw: str) -> tuple[Any, str, str]:
    lowered = raw.lower()
    if lowered in ("yes", "true", "y"):
        return True, "clean", ""
    if lowered in ("no", "false", "n"):
        return False, "clean", ""
    return raw, "invalid", "it is not yes or no"


def _coerce_string(raw: str, prop: dict[str, Any]) -> tuple[Any, str, str]:
    value, quality, note = raw, "clean", ""
    if prop.get("format") == "date":
        iso = parse_date(raw)
        if iso is None:
            return raw, "invalid", "it is not a date"
        if iso != raw:
            value, quality, note = iso, "coerced", f"reformatted as {iso}"
    if prop.get("format") == "email" and not _EMAIL.match(value):
        return raw, "invalid", "it is not an email address"
    pattern = prop.get("pattern")
    if pattern and not re.search(pattern, value):
        return value, "invalid", f"it does not match the pattern {pattern}"
    return value, quality, note


def _coerce_number(raw: str, kind: str, prop: dict[str, Any]) -> tuple[Any, str, str]:
    number, quality = parse_number(raw)
    if number is None:
        return raw, "invalid", f"it is not a {kind}"
    value: float | int = number
    if kind == "integer":
        if number != int(number):
            return raw, "invalid", "it is not a whole number"
        value = int(number)
    if "minimum" in prop and value < prop["minimum"]:
        return value, "invalid", f"it is below the minimum {prop['minimum']}"
    if "maximum" in prop and value > prop["maximum"]:
        return value, "invalid", f"it is above the maximum {prop['maximum']}"
    return value, quality, "" if quality == "clean" else f"read as {value}"


def candidates(doc: Document) -> Iterator[Candidate]:
    """Every (label, value) reading of every line; label matching later picks the right ones."""
    for order, line in enumerate(doc.lines):
        texts = [s.text for s in line.segments]
        for i, text in enumerate(texts):
            following = texts[i + 1] if i + 1 < len(texts) else ""
            if ":" in text:
                label, _, value = text.partition(":")
                yield Candidate(label.strip(), value.strip() or following, line, order)
                continue
            if following:
                yield Candidate(text, following, line, order)
            parts = text.split()
            for k in range(1, min(len(parts), 5)):
                yield Candidate(" ".join(parts[:k]), " ".join(parts[k:]), line, order)


def extract_fields(
    schema: dict[str, Any], doc: Document, *, drop_row: bool = False
) -> dict[str, FieldResult]:
    """One result per top-level schema property, in schema order.

    ``drop_row`` leaves the last row of each table out, as a model that missed one would (the
    ``drop_row`` fault): nothing in the result says so.
    """
    props: dict[str, Any] = schema.get("properties", {})
    unread = doc.unread_note()
    if not doc.has_text_layer:
        return {name: FieldResult(None, [], 1, str(unread)) for name in props}
    owners: dict[tuple[str, ...], str] = {}
    _collect_owners(props, owners)
    extractor = _Extractor(doc, list(candidates(doc)), owners, line_spans(doc), drop_row)
    results = {name: extractor.extract(name, prop) for name, prop in props.items()}
    if unread:  # what was not found may be on a page that could not be read
        for name, result in results.items():
            if result.value is None:
                results[name] = dataclasses.replace(
                    result, reasoning=f"{result.reasoning} {unread}"
                )
    return results


def _collect_owners(props: dict[str, Any], owners: dict[tuple[str, ...], str]) -> None:
    """Map each exact label form to its property, so a label that names one property exactly
    is never taken as a loose match for another ('Invoice Date' is not the due date)."""
    for name, prop in props.items():
        for form in (words(name), words(str(prop.get("title", "")))):
            if form:
                owners.setdefault(form, name)
        if schema_type(prop) == "object":
            _collect_owners(prop.get("properties", {}), owners)


def _display(name: str, prop: dict[str, Any]) -> str:
    return str(prop.get("title") or name.replace("_", " "))


def _page(line: Line) -> int:
    return line.page + 1


@dataclass
class _Extractor:
    doc: Document
    candidates: list[Candidate]
    owners: dict[tuple[str, ...], str]
    spans: dict[str, tuple[Span, ...]]
    drop_row: bool = False

    def extract(self, name: str, prop: dict[str, Any]) -> FieldResult:
        kind = schema_type(prop)
        if kind == "object" and prop.get("properties"):
            return self._object(name, prop)
        if kind == "array" and schema_type(prop.get("items", {})) == "object":
            result = self._table(name, prop)
        else:
            result = self._labelled(name, prop)
        if result is None and prop.get("enum"):
            result = self._classify(prop)
        if result is None:
            reason = f"No label like '{_display(name, prop)}' was found in the document."
            result = FieldResult(None, [], 1, reason)
        return result

    def _labelled(self, name: str, prop: dict[str, Any]) -> FieldResult | None:
        options = []
        for cand in self.candidates:
            rank = label_match(cand.label, name, prop)
            if not rank:
                continue
            if rank < EXACT and self.owners.get(words(cand.label), name) != name:
                continue
            value, quality, note = coerce(cand.value, prop)
            options.append((rank, quality, cand, value, note))
        if not options:
            return None
        options.sort(key=lambda o: (-o[0], -_QUALITY_RANK[o[1]], o[2].order))
        rank, quality, cand, value, note = options[0]
        where = f"label '{cand.label}' on page {_page(cand.line)}"
        if quality == "empty":
            return FieldResult(None, [], 1, f"The {where} has no value printed beside it.")
        reasoning = f"Found '{cand.value}' next to {where}"
        if rank == PARTIAL:
            reasoning += f", a partial match for '{_display(name, prop)}'"
        elif rank == LOOSE:
            reasoning += f", which only loosely matches '{_display(name, prop)}'"
        if quality == "invalid":
            return FieldResult(value, [cand.line.id], 2, f"{reasoning}, but {note}.")
        score = _LABEL_SCORE[rank]
        if quality == "coerced":
            score = 4 if rank == EXACT else 3
        if note:
            reasoning += f"; {note}"
        rival = next(
            (
                o
                for o in options[1:]
                if o[0] == rank
                and o[1] in ("clean", "coerced")
                and o[3] != value
                and o[2].line.id != cand.line.id
            ),
            None,
        )
        if rival is not None:
            score = min(score, 3)
            other = rival[2]
            reasoning += (
                f"; but label '{other.label}' on page {_page(other.line)} gives '{other.value}'"
            )
        return FieldResult(value, [cand.line.id], score, reasoning + ".")

    def _classify(self, prop: dict[str, Any]) -> FieldResult | None:
        options = [e for e in prop.get("enum", []) if isinstance(e, str)]
        first_page = self.doc.pages[0].lines if self.doc.pages else ()
        if not options or not first_page:
            return None
        # The title is the largest text on the first page (the topmost if several are as large).
        title = max(first_page, key=lambda ln: (round(ln.height, 1), -ln.bbox[1]))

        def mentions(line: Line, option: str) -> bool:
            phrase = re.escape(" ".join(words(option)))
            return re.search(rf"\b{phrase}\b", " ".join(words(line.text))) is not None

        hits = {e: [ln for ln in self.doc.lines if mentions(ln, e)] for e in options}
        present = [e for e in options if hits[e]]
        if not present:
            return None
        in_title = [e for e in present if mentions(title, e)]
        if len(in_title) == 1:
            choice = in_title[0]
            others = [e for e in present if e != choice]
            score = 5 if not others else 4
            reasoning = f"The title '{title.text}' on page {_page(title)} names it: {choice}"
            if others:
                reasoning += f"; the text also mentions {', '.join(others)}"
        else:
            ranked = sorted(present, key=lambda e: -len(hits[e]))
            choice = ranked[0]
            count = len(hits[choice])
            if len(ranked) == 1:
                score = 4
                reasoning = f"'{choice}' appears on {count} line(s) but not in the title"
            else:
                score = 3 if count > len(hits[ranked[1]]) else 2
                reasoning = (
                    f"'{choice}' appears on {count} line(s), but the text also mentions "
                    f"{', '.join(ranked[1:])}"
                )
        cited = [title] if choice in in_title else hits[choice][:3]
        citations = [ln.id for ln in cited]
        return FieldResult(choice, citations, score, reasoning + ".")

    def _table(self, name: str, prop: dict[str, Any]) -> FieldResult | None:
        item_schema = prop.get("items", {})
        item_props: dict[str, Any] = item_schema.get("properties", {})
        required = set(item_schema.get("required", []))
        rows: list[dict[str, Any]] = []
        cells: list[dict[str, FieldResult]] = []
        citations: list[str] = []
        notes: list[str] = []
        score, first_header = 5, None
        for page in self.doc.pages:
            lines = page.lines
            i = 0
            while i < len(lines):
                columns = _table_header(lines[i], item_props)
                if columns is None:
                    i += 1
                    continue
                header = lines[i]
                first_header = first_header or header
                citations.append(header.id)
                score = min(score, _LABEL_SCORE[min(rank for _, rank in columns.values())])
                missing = [p for p in item_props if p not in columns]
                if missing:
                    score = min(score, 3 if required & set(missing) else 4)
                    notes.append(f"no column for {', '.join(missing)}")
                i += 1
                previous, first_row = header, len(rows)
                while i < len(lines) and _is_row(lines[i], previous, header):
                    assigned = _assign_cells(lines[i], columns)
                    if len(assigned) < 2:
                        break
                    spans = self.spans[lines[i].id]
                    row_spans = {p: [spans[k] for k in ks] for p, ks in assigned.items()}
                    number = len(rows) + 1
                    row_cells, row_score = _read_row(
                        row_spans, columns, item_props, number, _page(lines[i]), notes
                    )
                    score = min(score, row_score)
                    rows.append({pname: cell.value for pname, cell in row_cells.items()})
                    cells.append(row_cells)
                    citations.append(lines[i].id)
                    previous = lines[i]
                    i += 1
                if self.drop_row and len(rows) > first_row:
                    del rows[-1], cells[-1], citations[-1]
        if first_header is None:
            return None
        header_text = " | ".join(s.text for s in first_header.segments)
        where = f"the table header '{header_text}' on page {_page(first_header)}"
        if not rows:
            return FieldResult(None, [], 1, f"Found {where} but no rows under it.")
        reasoning = f"Found {len(rows)} row(s) under {where}"
        if notes:
            reasoning += "; " + "; ".join(notes)
        return FieldResult(rows, citations, score, reasoning + ".", cells)

    def _object(self, name: str, prop: dict[str, Any]) -> FieldResult:
        parts = {k: self.extract(k, p) for k, p in prop["properties"].items()}
        required = set(prop.get("required", []))
        counted = [r for k, r in parts.items() if r.value is not None or k in required]
        if not any(r.value is not None for r in parts.values()):
            return FieldResult(None, [], 1, f"None of the parts of '{_display(name, prop)}' found.")
        citations = list(dict.fromkeys(c for r in parts.values() for c in r.citations))
        reasoning = " ".join(f"{k}: {r.reasoning}" for k, r in parts.items())
        value = {k: r.value for k, r in parts.items()}
        return FieldResult(value, citations, min(r.score for r in counted), reasoning)


def _read_row(
    spans: dict[str, list[Span]],
    columns: dict[str, tuple[Any, int]],
    item_props: dict[str, Any],
    number: int,
    page: int,
    notes: list[str],
) -> tuple[dict[str, FieldResult], int]:
    """One table row, cell by cell: (column -> cell, the row's part of the table's score).

    The header's label rank counts once, in the table's score; problems go to ``notes``.
    """
    cells: dict[str, FieldResult] = {}
    score = 5
    for pname, pschema in item_props.items():
        cell, quality, note = _read_cell(
            spans.get(pname, []), columns.get(pname), pschema, number, page
        )
        cells[pname] = cell
        if quality == "invalid":
            score = min(score, 2)
            notes.append(f"row {number} {pname} '{cell.value}': {note}")
        elif quality == "coerced":
            score = min(score, 4)
    return cells, score


def _read_cell(
    spans: list[Span], column: tuple[Any, int] | None, prop: dict[str, Any], number: int, page: int
) -> tuple[FieldResult, str, str]:
    """(the cell read by its column's schema, citing its Span blocks; quality; note)."""
    if column is None:
        return FieldResult(None, [], 1, "The table has no column for it."), "empty", ""
    head, rank = column
    text = " ".join(span.text for span in spans)
    value, quality, note = coerce(text, prop)
    where = f"under '{head.text}' in row {number} on page {page}"
    if quality == "empty":
        return FieldResult(None, [], 1, f"Nothing is printed {where}."), quality, note
    reasoning = f"Read '{text}' {where}"
    citations = [span.id for span in spans]
    if quality == "invalid":
        return FieldResult(value, citations, 2, f"{reasoning}, but {note}."), quality, note
    score = _LABEL_SCORE[rank]
    if quality == "coerced":
        score = 4 if rank == EXACT else 3
    reasoning += f"; {note}." if note else "."
    return FieldResult(value, citations, score, reasoning), quality, note


def _table_header(line: Line, item_props: dict[str, Any]) -> dict[str, tuple[Any, int]] | None:
    """Columns of a header line: item property -> (segment, label rank), or None if not a header."""
    if len(line.segments) < 2:
        return None
    columns: dict[str, tuple[Any, int]] = {}
    for segment in line.segments:
        ranked = [
            (label_match(segment.text, pname, pschema), -n, pname)
            for n, (pname, pschema) in enumerate(item_props.items())
            if pname not in columns
        ]
        rank, _, pname = max(ranked, default=(0, 0, ""))
        if rank:
            columns[pname] = (segment, rank)
    if len(columns) >= 2 and 2 * len(columns) >= len(line.segments):
        return columns
    return None


def _is_row(line: Line, previous: Line, header: Line) -> bool:
    # A blank line's worth of space, or a totals line, ends the table.
    if line.bbox[1] - previous.bbox[3] > 1.5 * header.height:
        return False
    first = words(line.segments[0].text)
    return not (first and first[0] in _TABLE_END)


def _assign_cells(line: Line, columns: dict[str, tuple[Any, int]]) -> dict[str, list[int]]:
    """Put each segment (by index) under the header column it overlaps most (or lies nearest to)."""
    cells: dict[str, list[int]] = {}
    for index, segment in enumerate(line.segments):

        def fit(item: tuple[str, tuple[Any, int]], seg: Any = segment) -> float:
            head = item[1][0]
            overlap = min(seg.x1, head.x1) - max(seg.x0, head.x0)
            return overlap if overlap > 0 else -min(abs(seg.x0 - head.x1), abs(head.x0 - seg.x1))

        pname = max(columns.items(), key=fit)[0]
        cells.setdefault(pname, []).append(index)
    return cells
