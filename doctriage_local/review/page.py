"""The review pages as HTML strings. Everything from a record is escaped: it is untrusted text.

Boxes are positioned in percent of their page image (``left = x * 100%`` …), so they stay on
their field at any zoom or window width. Colours: red below 0.5, amber below the threshold,
green at or above it, grey when Datalab never scored the field; every box also carries the
field's path, so colour is never the only cue.

What is decided is a path (``decision.to_decide``): one card each, a box each on the page where
the path has one. An array of objects is also shown as a table of its rows, the cells to decide
marked in it and linked to their cards; the schema's ``x-checks`` results are shown with what
each one expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote

from doctriage_core.domain.schemas import Check, PathSegment
from doctriage_local import reprocess as reprocessing
from doctriage_local.review.decision import (
    REJECT_REASONS,
    DecisionError,
    Node,
    Reason,
    applied_threshold,
    changes,
    display_value,
    is_failed,
    is_number_type,
    reading_of,
    record_nodes,
    schema_checks,
    schema_nodes,
    schema_problem,
    to_decide,
)
from doctriage_local.review.render import RenderedPage

LOW_CONFIDENCE = 0.5
TAG_LEFT_FROM = 0.7  # a box ending right of this (page fraction) has its tag on its left
CROP_MIN_WIDTH = 0.35  # a card's crop shows at least this much of the page's width …
CROP_PAD = (0.04, 0.02)  # … and this much (x, y) around the box
NEAR_DLQ = 2  # deliveries left before the review DLQ at which the page warns


@dataclass(frozen=True)
class QueueFacts:
    """What the review queue says about the open document's delivery."""

    receive_count: int  # ApproximateReceiveCount: how often it has been handed out
    max_receive_count: int | None  # the queue's RedrivePolicy maxReceiveCount
    depth: tuple[int, int] | None  # (waiting, with a reviewer), approximate


def confidence_class(result: dict[str, Any], document_threshold: float | None) -> str:
    """A field's or cell's colour, against the threshold that applied to it."""
    confidence = result.get("confidence")
    threshold = applied_threshold(result, document_threshold)
    if confidence is None:
        return "conf-none"
    if confidence < LOW_CONFIDENCE:
        return "conf-low"
    if threshold is not None and confidence < threshold:
        return "conf-mid"
    return "conf-ok"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _pct(value: float) -> str:
    return f"{max(0.0, min(1.0, float(value))) * 100:.4f}%"


def threshold_text(threshold: Any) -> str:
    """A threshold as a reviewer reads it: 1.0 and 0.0 are rules, not numbers to compare."""
    if not isinstance(threshold, int | float):
        return "unknown"
    if threshold >= 1:
        return "1.0 forces review"
    if threshold <= 0:
        return "0.0 (no confidence gate)"
    return f"{threshold:.2f}"


def _confidence_text(confidence: float | None, vouched: float | None = None) -> str:
    """A cell Datalab scored not on its own says what its list (or object) was scored."""
    if confidence is not None:
        return f"confidence {confidence:.2f}"
    return "unscored" if vouched is None else f"unscored (its list: confidence {vouched:.2f})"


def document_url(document_id: str) -> str:
    return f"/doc/{quote(document_id, safe='')}"


def _layout(
    title: str,
    body: str,
    *,
    page: str,
    token: str,
    auto: bool = False,
    data: dict[str, str] | None = None,
) -> str:
    extra = "".join(f' data-{k}="{_e(v)}"' for k, v in (data or {}).items())
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · doctriage review</title>
<link rel="stylesheet" href="/static/review.css">
<script src="/static/review.js" defer></script>
</head>
<body data-page="{page}" data-token="{_e(token)}" data-auto="{1 if auto else 0}"{extra}>
<a class="skip" href="#panel">Skip to the decision form</a>
{body}
</body>
</html>
"""


def _columns(rows: list[Any]) -> list[str]:
    """A table's columns: every key its rows have, in the order they first appear."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in (row if isinstance(row, dict) else {}) if k not in columns)
    return columns


def _cell_html(value: Any) -> str:
    if value is None:
        return '<span class="none">null</span>'
    if isinstance(value, (list, dict)):
        return f"<code>{_e(json.dumps(value, ensure_ascii=False))}</code>"
    return _e(display_value(value))


def _rows_table(rows: list[Any], columns: list[str], cell: Any, caption: str) -> str:
    """``rows`` as a table; ``cell(row_index, column)`` is each cell's inner HTML and class."""
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in columns)
    body = []
    for i in range(len(rows)):
        cells = []
        for column in columns:
            html, css = cell(i, column)
            cells.append(f'<td class="{css}">{html}</td>' if css else f"<td>{html}</td>")
        body.append(f'<tr><th scope="row">{i + 1}</th>{"".join(cells)}</tr>')
    return (
        f'<div class="table-wrap" tabindex="0"><table class="rows"><caption>{_e(caption)}</caption>'
        f'<thead><tr><th scope="col">row</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _value_html(value: Any) -> str:
    if value is None:
        return '<span class="none">null</span>'
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        columns = _columns(value)
        rows = f"{len(value)} row{'s' if len(value) != 1 else ''}"
        return _rows_table(value, columns, lambda i, c: (_cell_html(value[i].get(c)), ""), rows)
    if isinstance(value, (list, dict)):
        text = json.dumps(value, indent=2, ensure_ascii=False)
        return f'<pre class="value" tabindex="0">{_e(text)}</pre>'
    return f'<code class="value">{_e(display_value(value))}</code>'


def _correction_input(
    name: str,
    value: Any,
    posted: str | None,
    label: str,
    prop: object = None,
    reading: str = "",
    placeholder: str = "",
) -> str:
    if posted is None:
        posted = (
            json.dumps(value, indent=2, ensure_ascii=False)
            if isinstance(value, (list, dict))
            else display_value(value)
        )
    attrs = (
        f'name="value.{_e(name)}" class="correction" data-field="{_e(name)}" '
        f'aria-label="{_e(label)}" autocomplete="off" spellcheck="false"'
        + (f' aria-describedby="{reading}"' if reading else "")
        + (f' placeholder="{_e(placeholder)}"' if placeholder else "")
        + (' inputmode="decimal"' if is_number_type(prop) else "")
    )
    if isinstance(value, (list, dict)) or "\n" in posted:
        rows = min(12, posted.count("\n") + 2)
        return f"<textarea {attrs} rows={rows}>{_e(posted)}</textarea>"
    return f'<input type="text" {attrs} value="{_e(posted)}">'


def _where(field: dict[str, Any], index: int | None) -> str:
    page, box = field.get("page"), field.get("bbox")
    if page is None or not box:
        # found without a box: Datalab cited nothing that locates it (a cell, often)
        return "found, but not located on a page" if field.get("found") else "not found on any page"
    if index is None:  # no box of its own on the page
        return f"page {int(page) + 1}"
    return (
        f'<a href="#page-{int(page)}" class="goto" data-target="box-{index}">'
        f"page {int(page) + 1}</a>"
    )


def _reasons_html(reasons: list[Reason]) -> str:
    items = "".join(
        f"<li><code>{_e(r.flag)}</code> <span>{_e(r.text)}</span></li>" for r in reasons
    )
    return f'<ul class="reasons">{items}</ul>'


def _reasoning_html(field: dict[str, Any]) -> str:
    reasoning = field.get("reasoning")
    if not reasoning:
        return '<p class="reasoning muted">Datalab gave no reasoning for this field.</p>'
    return (
        '<blockquote class="reasoning"><span class="label">Datalab&rsquo;s reasoning</span> '
        f"{_e(reasoning)}</blockquote>"
    )


def _field_threshold_text(field: dict[str, Any], document_threshold: Any) -> str:
    applied = applied_threshold(field, document_threshold)
    text = threshold_text(applied)
    if field.get("threshold") is not None and applied != document_threshold:
        text += f" (this field's own; the document's is {threshold_text(document_threshold)})"
    return text


def _reading_html(
    reading_id: str, posted: str | None, node: Node, schema: dict[str, Any] | None
) -> str:
    """Beside a box: how its text is read. A form sent back (refused, reloaded by the server)
    shows the reading of what it holds, as the page does while the reviewer types."""
    answer = reading_of(posted, node, schema) if posted else {}
    refused = " refused" if answer.get("problem") else ""
    text = answer.get("problem") or answer.get("shown") or ""
    return f'<p class="reading{refused}" id="{reading_id}" aria-live="polite">{_e(text)}</p>'


def _radio(name: str, value: str, checked: str | None, label: str) -> str:
    mark = " checked" if checked == value else ""
    return (
        f'<label class="choice"><input type="radio" name="decision.{_e(name)}" '
        f'value="{value}"{mark}> {label}</label>'
    )


def _confirm_absent(name: str, node: Node, form: dict[str, list[str]] | None) -> str:
    """The tick a required field needs before "not on the document" is taken."""
    if not node.required:
        return ""
    ticked = " checked" if (form or {}).get(f"confirm.{name}", [""])[0] == "yes" else ""
    return (
        f'<label class="confirm"><input type="checkbox" name="confirm.{_e(name)}" value="yes"'
        f"{ticked}> confirm: the schema requires it, and it is not on the document</label>"
    )


def _flagged_card(
    index: int,
    node: Node,
    reasons: list[Reason],
    threshold: float | None,
    form: dict[str, list[str]] | None,
    problem: str | None,
    schema: dict[str, Any] | None,
    crop: str = "",
    vouched: float | None = None,  # a cell's or property's field: its confidence
) -> str:
    """One path to decide: why, what was extracted, where, and accept / correct / absent.

    An extracted value that fails its schema cannot simply be accepted: "accept anyway" with a
    note is the only way to keep it.
    """
    name, field = node.path, node.result
    label = f"Correct value for {name}"
    css = confidence_class(field, threshold)
    posted = (form or {}).get(f"decision.{name}", [None])[0]
    posted_value = (form or {}).get(f"value.{name}", [None])[0]
    posted_note = (form or {}).get(f"note.{name}", [""])[0]
    fails = schema_problem(field.get("value"), node.prop, schema)
    error = (
        f'<p class="problem" id="problem-{index}" role="alert">{_e(problem)}</p>' if problem else ""
    )
    described = f' aria-describedby="problem-{index}"' if problem else ""
    if fails:
        accept = (
            f'<p class="fails">The extracted value {_e(fails)}.</p>'
            + _radio(name, "accept_anyway", posted, "Accept anyway")
            + f'<label class="note">Why (required to accept anyway) <input type="text" '
            f'name="note.{_e(name)}" value="{_e(posted_note)}" autocomplete="off"></label>'
        )
    else:
        accept = _radio(name, "accept", posted, 'Accept <span class="muted">as extracted</span>')
    reading = f"reading-{index}"
    return f"""
<fieldset class="field-card flagged {css}{" has-problem" if problem else ""}" id="field-{index}"
  data-field="{_e(name)}" data-box="box-{index}" tabindex="-1"{described}>
  <legend><span class="name">{_e(name)}</span>
    <span class="pill {css}">{_e(_confidence_text(field.get("confidence"), vouched))}</span>
    {'<span class="pill required">required</span>' if node.required else ""}</legend>
  {error}
  {_reasons_html(reasons)}
  <dl class="facts">
    <dt>Extracted</dt><dd>{_value_html(field.get("value"))}</dd>
    <dt>Where</dt><dd>{_where(field, index)}</dd>
    <dt>Threshold</dt><dd class="threshold">{_e(_field_threshold_text(field, threshold))}</dd>
  </dl>
  {crop}
  {_reasoning_html(field)}
  <div class="choices" role="radiogroup" aria-label="Decision for {_e(name)}">
    {accept}
    {_radio(name, "correct", posted, "Correct to")}
    {_correction_input(name, field.get("value"), posted_value, label, node.prop, reading)}
    {_reading_html(reading, posted_value, node, schema)}
    {_radio(name, "absent", posted, "Not on the document")}
    {_confirm_absent(name, node, form)}
  </div>
</fieldset>"""


def _other_row(
    anchor: str,
    node: Node,
    threshold: float | None,
    form: dict[str, list[str]] | None,
) -> str:
    name, field = node.path, node.result
    css = confidence_class(field, threshold)
    posted_value = (form or {}).get(f"value.{name}", [None])[0]
    reasoning = field.get("reasoning") or ""
    label = f"Correct value for {name}"
    return f"""
<div class="field-row" id="{anchor}" data-field="{_e(name)}">
  <div class="row-head"><span class="name">{_e(name)}</span>
    <span class="pill {css}">{_e(_confidence_text(field.get("confidence")))}</span>
    <span class="muted">{_where(field, None)}</span></div>
  <div class="row-value">{_value_html(field.get("value"))}</div>
  {f'<p class="reasoning muted">{_e(reasoning)}</p>' if reasoning else ""}
  <label class="edit">Correct to (leave as is to keep)
    {_correction_input(name, field.get("value"), posted_value, label, node.prop)}
  </label>
  {_confirm_absent(name, node, form) if (posted_value or "").strip() == "null" else ""}
</div>"""


def _table_html(
    node: Node, nodes: dict[str, Node], indices: dict[str, int], threshold: float | None
) -> str:
    """An array of objects as a table of its cells; the cells to decide link to their cards."""
    rows = node.rows  # every declared column has a result in every row
    columns = _columns(rows)

    def cell(i: int, column: str) -> tuple[str, str]:
        path = f"{node.path}[{i}].{column}"
        result = nodes[path].result if path in nodes else {"value": None, "confidence": None}
        css = confidence_class(result, threshold)
        html = _cell_html(result.get("value"))
        if path not in indices:
            return html, ""
        card = f"field-{indices[path]}"
        text = _confidence_text(result.get("confidence"))
        return (
            f'<a href="#{card}" class="goto-card" '
            f'title="decide {_e(path)} ({_e(text)})">{html}</a>',
            f"to-decide {css}",
        )

    found = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    return _rows_table(rows, columns, cell, f"{node.path}: {found}")


def _boxes(
    page_index: int,
    nodes: dict[str, Node],
    indices: dict[str, int],
    threshold: float | None,
) -> str:
    """A box on this page for each path to decide that has one (a cell's is its own)."""
    out = []
    for name, index in indices.items():
        field = nodes[name].result
        box = field.get("bbox")
        if field.get("page") != page_index or not box:
            continue
        css = confidence_class(field, threshold)
        value = display_value(field.get("value"))
        title = f"{name}: {value} ({_confidence_text(field.get('confidence'))})"
        style = (
            f"left:{_pct(box['x'])};top:{_pct(box['y'])};"
            f"width:{_pct(box['width'])};height:{_pct(box['height'])}"
        )
        side = " tag-left" if box["x"] + box["width"] > TAG_LEFT_FROM else ""
        out.append(
            f'<a class="box {css}{side}" id="box-{index}" href="#field-{index}"'
            f' data-field="{_e(name)}" data-card="field-{index}" style="{style}"'
            f' title="{_e(title)}">'
            f'<span class="tag">{_e(name)}</span></a>'
        )
    return "".join(out)


def _crop_html(
    index: int, field: dict[str, Any], document_id: str, sizes: dict[int, tuple[int, int]]
) -> str:
    """The page around a field's box, for a card (shown on narrow screens, where the page and the
    card are never in sight together). Pure CSS: the crop keeps the region's aspect ratio and the
    page image is scaled and shifted inside it, so it needs no second image."""
    page, box = field.get("page"), field.get("bbox")
    if page is None or not box or int(page) not in sizes:
        return ""
    width_px, height_px = sizes[int(page)]
    x, y, w, h = (max(0.0, min(1.0, float(box[k]))) for k in ("x", "y", "width", "height"))
    crop_w = min(1.0, max(w + 2 * CROP_PAD[0], CROP_MIN_WIDTH))
    crop_h = min(1.0, h + 2 * CROP_PAD[1])
    left = max(0.0, min(1.0 - crop_w, x + w / 2 - crop_w / 2))
    top = max(0.0, min(1.0 - crop_h, y + h / 2 - crop_h / 2))
    image = (
        f"width:{100 / crop_w:.4f}%;left:{-left / crop_w * 100:.4f}%;top:{-top / crop_h * 100:.4f}%"
    )
    mark = (
        f"left:{(x - left) / crop_w * 100:.4f}%;top:{(y - top) / crop_h * 100:.4f}%;"
        f"width:{w / crop_w * 100:.4f}%;height:{h / crop_h * 100:.4f}%"
    )
    ratio = f"{crop_w * width_px:.1f} / {crop_h * height_px:.1f}"
    return (
        f'<div class="crop" id="crop-{index}" style="aspect-ratio:{ratio}">'
        f'<img src="{document_url(document_id)}/page/{int(page)}" alt="" style="{image}">'
        f'<span class="crop-mark" style="{mark}"></span></div>'
    )


def _viewer_bar(page_count: int, shown: int) -> str:
    """Zoom and page jump over the page images (hidden until the script wires it up)."""
    options = "".join(f'<option value="{i}">{i + 1}</option>' for i in range(shown))
    return (
        '<div class="viewer-bar" role="toolbar" aria-label="Page view" hidden>'
        '<button type="button" class="secondary" data-zoom="out" aria-label="Zoom out"'
        ' title="Zoom out (-)">&minus;</button>'
        '<output id="zoom-level" aria-live="polite">100%</output>'
        '<button type="button" class="secondary" data-zoom="in" aria-label="Zoom in"'
        ' title="Zoom in (+)">+</button>'
        '<button type="button" class="secondary" data-zoom="fit" title="Fit the width (0)">'
        "Fit width</button>"
        f'<label class="page-jump">Page <select id="page-jump">{options}</select>'
        f" of {page_count}</label></div>"
    )


def _pages_html(
    record: dict[str, Any],
    pages: list[RenderedPage],
    page_count: int,
    render_error: str | None,
    nodes: dict[str, Node],
    indices: dict[str, int],
) -> str:
    document_id = record["document_id"]
    threshold = record.get("human_review_threshold")
    legend = (
        '<p class="legend" aria-label="Box colours">'
        '<span class="swatch conf-low"></span> confidence below 0.5 '
        '<span class="swatch conf-mid"></span> below the threshold that applied to it '
        '<span class="swatch conf-ok"></span> at or above it '
        '<span class="swatch conf-none"></span> unscored</p>'
    )
    if render_error:
        return f'{legend}<p class="notice warn" role="alert">No preview: {_e(render_error)}</p>'
    figures = []
    for page in pages:
        size = f' width="{page.width}" height="{page.height}"' if page.width else ""
        figures.append(
            f'<figure class="page" id="page-{page.index}" data-page="{page.index}">'
            f'<div class="sheet"><img src="{document_url(document_id)}/page/{page.index}"'
            f'{size} alt="Page {page.index + 1} of {page_count}">'
            f"{_boxes(page.index, nodes, indices, threshold)}</div>"
            f"<figcaption>Page {page.index + 1} of {page_count}</figcaption></figure>"
        )
    more = (
        f'<p class="notice">Showing the first {len(pages)} of {page_count} pages.</p>'
        if len(pages) < page_count
        else ""
    )
    viewer = (
        '<div class="viewer" id="viewer" tabindex="0" role="region"'
        ' aria-label="Page images: drag or use the arrow keys to move around">'
        f"{''.join(figures)}</div>"
    )
    return legend + _viewer_bar(page_count, len(pages)) + viewer + more


def _summary(record: dict[str, Any]) -> str:
    source = record.get("source") or {}
    doc_type = record.get("document_type") or "-"
    type_conf = record.get("document_type_confidence")
    average = record.get("extraction_score_average")
    facts = [
        f'<span class="badge status-{_e(record.get("status"))}">{_e(record.get("status"))}</span>',
        f'<span class="badge review">{_e(record.get("review_status"))}</span>',
        f"type <b>{_e(doc_type)}</b>"
        + (f" ({type_conf:.2f})" if isinstance(type_conf, (int, float)) else ""),
        f"threshold <b>{_e(threshold_text(record.get('human_review_threshold')))}</b>",
        "average score <b>" + ("-" if average is None else f"{average:.2f}") + "</b> of 5",
        f'<span class="muted">{_e(record["document_id"])}</span>',
    ]
    if source.get("reprocess_of"):
        facts.append(f"a reprocess of <code>{_e(source['reprocess_of'])}</code>")
    version = source.get("version_id")
    where = f"s3://{source.get('bucket')}/{source.get('key')}"
    return (
        f'<h1 id="doc-title">{_e(source.get("key") or record["document_id"])}</h1>'
        f'<p class="facts-line">{" · ".join(facts)}</p>'
        f'<p class="muted small">{_e(where)}{f" (version {_e(version)})" if version else ""}</p>'
    )


_OUTCOME_TEXT = {
    "decided": "Decided",
    "entered_by_hand": "Values entered by hand",
    "reprocess": "Sent through the pipeline again",
    "rejected": "Rejected",
}


def _decision_html(review: dict[str, Any], heading: str | None = None) -> str:
    corrected = review.get("corrected") or {}
    notes = review.get("notes") or {}
    rows = "".join(
        f"<li><b>{_e(name)}</b> "
        + ("not on the document" if value is None else f"corrected to {_value_html(value)}")
        + "</li>"
        for name, value in corrected.items()
    )
    accepted = ", ".join(
        _e(n) + (f" (accepted anyway: {_e(notes[n])})" if n in notes else "")
        for n in review.get("accepted") or []
    )
    outcome = review.get("outcome") or "decided"
    facts = []
    if review.get("reprocessed_as"):
        facts.append(f"<p>New document: <code>{_e(review['reprocessed_as'])}</code></p>")
    if review.get("rejected_reason"):
        reason = REJECT_REASONS.get(review["rejected_reason"], review["rejected_reason"])
        facts.append(f"<p>Why: {_e(reason)}</p>")
    if review.get("note"):
        facts.append(f"<p>Note: {_e(review['note'])}</p>")
    if outcome == "decided" or corrected:
        facts.append(f"<p>Accepted: {accepted or 'none'}</p>")
        facts.append(f'<ul class="corrections">{rows or "<li>No corrections.</li>"}</ul>')
    heading = heading or _OUTCOME_TEXT.get(outcome, outcome)
    return (
        f'<section class="notice ok" role="status"><h2>{_e(heading)}</h2>'
        f"<p>By <b>{_e(review.get('reviewer'))}</b> at {_e(review.get('decided_at'))}.</p>"
        f"{''.join(facts)}{_history_html(review.get('history') or [])}</section>"
    )


def _outcomes_html(
    record: dict[str, Any],
    schema: dict[str, Any] | None,
    form: dict[str, list[str]] | None,
    problems: dict[str, str],
) -> str:
    """A failed document's three outcomes: its values by hand, reprocess, or reject."""
    form = form or {}
    chosen = form.get("outcome", [""])[0]

    def radio(value: str, label: str) -> str:
        mark = " checked" if chosen == value else ""
        return (
            f'<label class="choice"><input type="radio" name="outcome" value="{value}"{mark}>'
            f" {label}</label>"
        )

    entries = []
    for i, node in enumerate(schema_nodes(schema).values()):
        name = node.path
        problem = problems.get(name)
        posted = form.get(f"value.{name}", [""])[0]
        entries.append(
            f'<div class="hand-entry{" has-problem" if problem else ""}" id="hand-{i}" '
            f'data-field="{_e(name)}"><label><span class="name">{_e(name)}</span>'
            + (' <span class="pill required">required</span>' if node.required else "")
            + _correction_input(
                name,
                None,
                posted,
                f"Value of {name}",
                node.prop,
                f"reading-h{i}",
                "not on the document",
            )
            + "</label>"
            + (f'<p class="problem" role="alert">{_e(problem)}</p>' if problem else "")
            + _reading_html(f"reading-h{i}", posted, node, schema)
            + _confirm_absent(name, node, form)
            + "</div>"
        )
    hand = (
        "".join(entries)
        if entries
        else '<p class="muted">No schema for this type: no values to enter by hand.</p>'
    )
    reasons = "".join(
        f'<option value="{key}"{" selected" if form.get("reject_reason", [""])[0] == key else ""}>'
        f"{_e(text)}</option>"
        for key, text in REJECT_REASONS.items()
    )
    problem = problems.get("outcome")
    return f"""
<section class="outcomes{" has-problem" if problem else ""}" id="outcomes"
  aria-labelledby="outcomes-title">
  <h2 id="outcomes-title">Extraction failed: choose an outcome</h2>
  {f'<p class="problem" role="alert">{_e(problem)}</p>' if problem else ""}
  <div class="outcome">{radio("entered_by_hand", "Enter the values by hand")}
    <p class="muted small">An empty box is &ldquo;not on the document&rdquo;.</p>
    <div class="hand">{hand}</div></div>
  <div class="outcome">{radio("reprocess", "Reprocess")}
    <p class="muted small">The upload goes through the pipeline again as a new document, as
    <code>doctriage reprocess</code> does ({_e(reprocessing.decide(record).why)}).</p>
    {_already_reprocessed(record)}</div>
  <div class="outcome">{radio("rejected", "Reject")}
    <label>Why <select name="reject_reason"><option value="">choose…</option>{reasons}</select>
    </label></div>
  <label class="note">Note (optional) <input type="text" name="note"
    value="{_e(form.get("note", [""])[0])}" autocomplete="off"></label>
</section>"""


def _already_reprocessed(record: dict[str, Any]) -> str:
    earlier = (record.get("source") or {}).get("reprocess_of")
    if not earlier:
        return ""
    return (
        f'<p class="notice warn small" id="already-reprocessed">This document is itself a '
        f"reprocess of <code>{_e(earlier)}</code>, which failed too: once more sends the same "
        "upload to Datalab again.</p>"
    )


def _decision_text(decision: Any) -> str:
    if decision is None:
        return "undecided"
    if isinstance(decision, dict) and decision.get("decision") == "accept":
        return "accepted"
    if isinstance(decision, dict) and decision.get("decision") == "correct":
        return f"corrected to {json.dumps(decision.get('value'), ensure_ascii=False)}"
    return json.dumps(decision, ensure_ascii=False)


def _changes_html(entries: list[dict[str, Any]]) -> str:
    items = "".join(
        f"<li><code>{_e(c.get('path'))}</code>: {_e(_decision_text(c.get('was')))} &rarr; "
        f"{_e(_decision_text(c.get('now')))}</li>"
        for c in entries
    )
    return f'<ul class="changes">{items or "<li>nothing</li>"}</ul>'


def _history_html(history: list[dict[str, Any]]) -> str:
    """Every decision stored on the record, oldest first: who, when, what it changed."""
    if len(history) < 2:
        return ""
    items = "".join(
        f"<li>{'Decided' if i == 0 else 'Amended'} by <b>{_e(h.get('reviewer'))}</b> at "
        f"{_e(h.get('decided_at'))}{_changes_html(h.get('changes') or []) if i else ''}</li>"
        for i, h in enumerate(history)
    )
    return f'<h3>History</h3><ol class="history">{items}</ol>'


def _path_text(segments: tuple[PathSegment, ...]) -> str:
    return ".".join(name + ("[]" if each else "") for name, each in segments)


def _number_text(value: Any) -> str:
    return "-" if value is None else _e(display_value(value))


def _checks_html(record: dict[str, Any], checks: dict[str, Check]) -> str:
    """The schema's x-checks results: each check's sum, the value it should equal, the slack."""
    results = record.get("checks") or []
    if not results:
        return ""
    rows = []
    for result in results:
        passed = result.get("passed")
        outcome = {True: "passed", False: "failed"}.get(passed, "not evaluated")
        check = checks.get(str(result.get("name")))
        rule = (
            f"{' + '.join(_e(_path_text(p)) for p in check.sum)} = {_e(_path_text(check.equals))}"
            if check
            else ""
        )
        rows.append(
            f'<tr class="check-{outcome.replace(" ", "-")}"><th scope="row"><code>'
            f"{_e(result.get('name'))}</code>"
            f"{f'<br><span class=small>{rule}</span>' if rule else ''}</th>"
            f"<td><b>{outcome}</b></td><td>{_number_text(result.get('computed'))}</td>"
            f"<td>{_number_text(result.get('expected'))}</td>"
            f"<td>{_number_text(result.get('tolerance'))}</td></tr>"
        )
    return (
        '<section class="checks" aria-labelledby="checks-title">'
        '<h2 id="checks-title">Checks</h2><div class="table-wrap" tabindex="0"><table class="rows">'
        "<caption>The schema&rsquo;s sums: computed from the extracted values, and what they "
        'should equal</caption><thead><tr><th scope="col">check</th>'
        '<th scope="col">result</th><th scope="col">computed sum</th>'
        '<th scope="col">expected</th><th scope="col">tolerance</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _form_of(review: dict[str, Any]) -> dict[str, list[str]]:
    form: dict[str, list[str]] = {"outcome": [str(review.get("outcome", "decided"))]}
    for name in review.get("accepted") or []:
        anyway = name in (review.get("notes") or {})
        form[f"decision.{name}"] = ["accept_anyway" if anyway else "accept"]
        if anyway:
            form[f"note.{name}"] = [review["notes"][name]]
    for name, value in (review.get("corrected") or {}).items():
        form[f"decision.{name}"] = ["correct" if value is not None else "absent"]
        text = (
            json.dumps(value, indent=2, ensure_ascii=False)
            if isinstance(value, (list, dict))
            else display_value(value)
        )
        form[f"value.{name}"] = [text]
        form[f"confirm.{name}"] = ["yes"]
    for key in ("reject_reason", "note"):
        if review.get(key.replace("reject_", "rejected_")):
            form[key] = [str(review[key.replace("reject_", "rejected_")])]
    return form


def document_page(
    record: dict[str, Any],
    *,
    pages: list[RenderedPage],
    page_count: int,
    render_error: str | None,
    token: str,
    reviewer: str,
    is_open: bool,
    form: dict[str, list[str]] | None = None,
    error: DecisionError | None = None,
    notice: str | None = None,
    lease_warning: str | None = None,
    schema: dict[str, Any] | None = None,
    audit: bool = False,
    queue: QueueFacts | None = None,
) -> str:
    """The review page of one document: pages with boxes on the left, the decision on the right.

    ``is_open``: this server holds the document's message, so a decision can be submitted;
    otherwise the page is read-only (already decided, or not taken from the queue here).
    ``schema``: the document type's extraction schema when it could be read (column types,
    minItems, the x-checks' paths); ``audit``: an audit sample, every field to decide;
    ``queue``: the open document's delivery (how often handed out, how near the DLQ).
    """
    fields: dict[str, Any] = record.get("fields") or {}
    nodes = record_nodes(record, schema)
    flagged = to_decide(record, schema, audit=audit)
    indices = {path: i for i, path in enumerate(flagged)}
    deciding = {nodes[path].field for path in flagged}
    others = [name for name in fields if name not in deciding]
    anchors = {path: f"field-{i}" for path, i in indices.items()}
    anchors.update({name: f"other-{i}" for i, name in enumerate(others)})
    failed = is_failed(record)
    if failed:
        anchors = {name: f"hand-{i}" for i, name in enumerate(schema_nodes(schema))}
        anchors["outcome"] = "outcomes"
    threshold = record.get("human_review_threshold")
    sizes = {p.index: (p.width, p.height) for p in pages if p.width and p.height}
    review = record.get("review")
    problems = error.problems if error else {}
    editable = is_open and not review
    if review and form is None:
        form = _form_of(review)  # show the decision in the (read-only) form

    notices = _notices(
        record,
        is_open=is_open,
        anchors=anchors,
        error=error,
        notice=notice,
        lease_warning=lease_warning,
        audit=audit,
    )

    def card(path: str) -> str:
        reasons = flagged[path]
        node = nodes[path]
        crop = _crop_html(indices[path], node.result, record["document_id"], sizes)
        whole = (record.get("fields") or {}).get(node.field) or {}
        vouched = whole.get("confidence") if node.path != node.field else None
        return _flagged_card(
            indices[path], node, reasons, threshold, form, problems.get(path), schema, crop, vouched
        )

    groups = []
    for name in fields:
        paths = [p for p in flagged if nodes[p].field == name]
        if not paths:
            continue
        cards = "".join(card(p) for p in paths)
        if nodes[name].rows and paths != [name]:  # an array of objects: its table, then cards
            table = _table_html(nodes[name], nodes, indices, threshold)
            cards = f'<div class="table-group" data-field="{_e(name)}">{table}{cards}</div>'
        groups.append(cards)
    rows = "".join(_other_row(anchors[n], nodes[n], threshold, form) for n in others)
    noun = "field" if audit else "flagged field"
    plural = "s" if len(flagged) != 1 else ""
    if not flagged:
        heading = "No field is flagged: check the document and the flags above"
    elif review:
        heading = f"{len(flagged)} {noun}{plural}, as decided"
    else:
        heading = f"Check {len(flagged)} {noun}{plural}"
    form_body = f"""
{_checks_html(record, schema_checks(schema))}
<section class="flagged" aria-labelledby="flagged-title" data-noun="{noun}">
  <h2 id="flagged-title">{heading}</h2>
  <p class="progress muted" id="progress" aria-live="polite"></p>
  {"".join(groups)}
</section>
<details class="others">
  <summary>{len(others)} other field{"s" if len(others) != 1 else ""} (not flagged)</summary>
  {rows or '<p class="muted">None.</p>'}
</details>"""
    if failed:
        form_body = _outcomes_html(record, schema, form, problems)
    url = document_url(record["document_id"])
    disabled = "" if editable else " disabled"
    panel = f"""
<form method="post" action="{url}/decision" id="decision-form" novalidate>
<fieldset class="whole"{disabled}>
<input type="hidden" name="token" value="{_e(token)}">
{form_body}
<div class="submit-row">
  <p class="reviewer">{"Decided by" if review else "Reviewing as"}
    <b>{_e(review.get("reviewer") if review else reviewer)}</b></p>
  <button type="submit" class="primary" accesskey="s" id="submit">Store decision</button>
</div>
</fieldset>
</form>"""
    if editable:
        panel += f"""
<form method="post" action="{url}/skip" class="release" id="skip-form">
  <input type="hidden" name="token" value="{_e(token)}">
  <button type="submit" class="secondary" id="skip">Skip: give it to someone else</button>
</form>"""
    keys = """
<section class="help" aria-label="Keyboard shortcuts">
  <h2>Keys</h2>
  <ul>
    <li><kbd>j</kbd> / <kbd>k</kbd> next / previous flagged field</li>
    <li><kbd>a</kbd> accept the value · <kbd>c</kbd> correct it (type, then <kbd>Esc</kbd>)
      · <kbd>n</kbd> not on the document</li>
    <li><kbd>+</kbd> / <kbd>-</kbd> zoom the page · <kbd>0</kbd> fit its width · drag or
      arrow keys (on the page) to move around</li>
    <li><kbd>Ctrl</kbd>+<kbd>Enter</kbd> store the decision · <kbd>Tab</kbd> / <kbd>Enter</kbd>
      work everywhere</li>
  </ul>
  <p class="muted small">Your choices are kept in this browser until stored: a reload or a
    restart of the review server does not lose them.</p>
</section>"""
    body = f"""
<header class="topbar">
  <p class="whoami">reviewing as <b id="reviewer">{_e(reviewer)}</b></p>
  <p class="brand"><a href="/">doctriage review</a></p>
  {_summary(record)}
</header>
<main class="layout">
  <section class="pages" aria-label="Document pages">
    {_pages_html(record, pages, page_count, render_error, nodes, indices)}
  </section>
  <aside class="panel" id="panel" aria-label="Decision">
    {_queue_html(queue) if queue and editable else ""}
    {"".join(notices)}
    {panel}
    {keys}
  </aside>
</main>"""
    title = (record.get("source") or {}).get("key") or record["document_id"]
    return _layout(
        f"Review {title}",
        body,
        page="document",
        token=token,
        data={"document": record["document_id"], "decided": "1" if review else "0"},
    )


def _queue_html(queue: QueueFacts) -> str:
    """How often this document has been handed out, the queue's depth, and how near the DLQ."""
    count = queue.receive_count
    facts = [f'handed out <b id="receive-count">{count}</b> time{"s" if count != 1 else ""}']
    if queue.depth is not None:
        waiting, held = queue.depth
        facts.append(
            f'<b id="queue-waiting">{waiting}</b> waiting on the review queue, '
            f"<b>{held}</b> out of sight (with a reviewer, this one included, or skipped)"
        )
    html = f'<p class="queue-facts small" id="queue-facts">This document: {" · ".join(facts)}</p>'
    limit = queue.max_receive_count
    if limit is not None and limit - count <= NEAR_DLQ:
        left = limit - count
        warning = (
            f"This is its last delivery: after {limit} (the review queue's maxReceiveCount) "
            "SQS moves it to the review dead-letter queue, with no decision, the next time "
            "it is put back or skipped."
            if left <= 0
            else f"Near the review dead-letter queue: {left} more deliver"
            f"{'y' if left == 1 else 'ies'} and SQS moves it there with no decision "
            f"(maxReceiveCount {limit}). Decide it if you can rather than skip it."
        )
        html += f'<p class="notice warn" role="alert" id="near-dlq">{_e(warning)}</p>'
    return html


def _resend_warning(stored: dict[str, Any], yours: dict[str, Any]) -> str:
    if yours.get("outcome") != "reprocess" or stored.get("reprocessed_as"):
        return ""
    return (
        '<p class="notice warn" id="resend-warning">Recording it sends the upload through the '
        "pipeline again as a new document: Datalab reads (and bills) its pages once more.</p>"
    )


def conflict_page(
    record: dict[str, Any],
    *,
    stored: dict[str, Any],
    yours: dict[str, Any],
    form: dict[str, list[str]],
    revision: int,
    token: str,
) -> str:
    """A decision that differs from the one stored meanwhile: both, what yours would change,
    and a form to record yours as an amendment (the posted form, resent, with the revision it
    amends: an amendment over a newer one is a conflict again)."""
    document_id = record["document_id"]
    title = (record.get("source") or {}).get("key") or document_id
    hidden = "".join(
        f'<input type="hidden" name="{_e(name)}" value="{_e(value)}">'
        for name, values in form.items()
        if name not in ("token", "revision")
        for value in values
    )
    body = f"""
<header class="topbar"><p class="brand"><a href="/">doctriage review</a></p>
  <h1 id="conflict-title">{_e(title)}: decided differently meanwhile</h1></header>
<main class="waiting conflict" id="panel" data-document="{_e(document_id)}">
  <p class="notice warn" role="alert">Someone stored a decision for this document before yours
    (another tab or another reviewer). Yours was <b>not stored</b>, and nothing was overwritten.
  </p>
  {_decision_html(stored, "The stored decision")}
  <section class="notice"><h2>Yours</h2><p>Recorded as an amendment, it would change:</p>
    {_changes_html(changes(stored, yours))}{_resend_warning(stored, yours)}</section>
  <form method="post" action="{document_url(document_id)}/amend" id="amend-form">
    <input type="hidden" name="token" value="{_e(token)}">
    <input type="hidden" name="revision" value="{revision}">
    {hidden}
    <button type="submit" class="primary" id="amend">Record mine as an amendment</button>
  </form>
  <p><a href="/?kept={quote(document_id, safe="")}" id="keep">Keep the stored decision</a>
    and go on to the next document.</p>
</main>"""
    return _layout(
        f"Conflict on {title}", body, page="conflict", token=token, data={"document": document_id}
    )


def _notices(
    record: dict[str, Any],
    *,
    is_open: bool,
    anchors: dict[str, str],
    error: DecisionError | None,
    notice: str | None,
    lease_warning: str | None,
    audit: bool,
) -> list[str]:
    """The banners above the form: what happened, what is wrong, what the document's flags say."""
    review = record.get("review")
    problems = error.problems if error else {}
    notices = []
    if notice:
        notices.append(f'<p class="notice" role="status">{_e(notice)}</p>')
    if lease_warning:
        notices.append(f'<p class="notice warn" role="alert">{_e(lease_warning)}</p>')
    if error:
        items = "".join(
            f'<li><a href="#{anchors[n]}">{_e(n)}</a>: {_e(t)}</li>'
            for n, t in problems.items()
            if n in anchors
        )
        notices.append(
            '<div class="notice error" role="alert" tabindex="-1" id="error-summary">'
            f"<h2>Not stored: {len(problems)} answer{'s' if len(problems) != 1 else ''} "
            f"to fix</h2><ul>{items}</ul></div>"
        )
    if audit:
        notices.append(
            '<p class="notice audit" role="note"><b>Audit sample</b>: chosen at random from '
            "documents that passed automatically, to measure how often auto is wrong. Nothing "
            "here was flagged: check every field and every cell, and accept or correct each "
            "one as you would a flagged one.</p>"
        )
    if review:
        notices.append(_decision_html(review))
    elif not is_open:
        notices.append(
            '<p class="notice warn">Read-only: this document is not open here (it was not taken '
            'from the review queue by this server). <a href="/">Take the next document</a>.</p>'
        )
    if record.get("error"):
        err = record["error"]
        notices.append(
            f'<p class="notice error">Extraction failed: <b>{_e(err.get("type"))}</b> '
            f"{_e(err.get('message'))}</p>"
        )
    other_flags = [
        f
        for f in record.get("flags") or []
        if f.split(":", 1)[0]
        in ("extraction_failed", "scores_unavailable", "low_confidence_classification")
    ]
    if other_flags:
        notices.append(
            '<p class="notice">Document flags: '
            + ", ".join(f"<code>{_e(f)}</code>" for f in other_flags)
            + "</p>"
        )
    return notices


def waiting_page(
    *,
    token: str,
    notice: str | None,
    auto: bool,
    decided: int,
    duplicates: int,
    queue_url: str,
) -> str:
    """No document open: wait for the next one (JavaScript long-polls; without it, a button)."""
    heading = "Waiting for the next document" if auto else "Ready for the next document"
    body = f"""
<header class="topbar"><p class="brand"><a href="/">doctriage review</a></p>
  <h1>{heading}</h1></header>
<main class="waiting" id="panel">
  {f'<p class="notice ok" role="status">{_e(notice)}</p>' if notice else ""}
  <p id="wait-status" role="status" aria-live="polite">{
        "Checking the review queue…" if auto else "Take the next document when you are ready."
    }</p>
  <form method="post" action="/next">
    <input type="hidden" name="token" value="{_e(token)}">
    <button type="submit" class="primary" accesskey="n" id="next">Next document</button>
  </form>
  <p class="muted small">Decisions stored this session: <b id="decided">{decided}</b> ·
    duplicate messages acknowledged: <b id="duplicates">{duplicates}</b><br>
    Queue: {_e(queue_url)}</p>
</main>"""
    return _layout("Waiting", body, page="waiting", token=token, auto=auto)


def message_page(title: str, message: str, *, token: str = "") -> str:
    body = f"""
<header class="topbar"><p class="brand"><a href="/">doctriage review</a></p>
  <h1>{_e(title)}</h1></header>
<main class="waiting" id="panel"><p class="notice error" role="alert">{_e(message)}</p>
  <p><a href="/">Back to the review queue</a></p></main>"""
    return _layout(title, body, page="message", token=token)
