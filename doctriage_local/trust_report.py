"""``doctriage trust --html``: the trust report as one self-contained HTML page (no scripts, no
external files): a reliability diagram per field as inline SVG, the review load each
recommendation implies, and the audit estimate. Pure: a report (``trust.report``) in, text out.
"""

from __future__ import annotations

from html import escape
from typing import Any

from doctriage_core.domain.evaluation import confidence_of

_SIZE = 220  # the diagram's plot area, in px
_PAD = 34

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.fields { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 0; border: 1px solid #ddd; padding: 8px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.note { color: #555; }
"""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(ci: list[float] | None) -> str:
    return "n/a" if ci is None else f"[{ci[0]:.1%}, {ci[1]:.1%}]"


def _x(confidence: float) -> float:
    return _PAD + confidence * _SIZE


def _y(accuracy: float) -> float:
    return _PAD + (1 - accuracy) * _SIZE


def diagram(by_score: dict[str, dict[str, Any]], title: str) -> str:
    """Accuracy (dot) and its 95 % interval (bar) at each score level's confidence, against the
    diagonal a perfectly calibrated score would follow."""
    side = _SIZE + 2 * _PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{side}" height="{side}" '
        f'role="img" aria-label="reliability diagram: {escape(title)}">',
        f'<rect x="{_PAD}" y="{_PAD}" width="{_SIZE}" height="{_SIZE}" fill="none" stroke="#999"/>',
        f'<line x1="{_x(0)}" y1="{_y(0)}" x2="{_x(1)}" y2="{_y(1)}" stroke="#bbb" '
        'stroke-dasharray="4 3"/>',
        f'<text x="{_PAD + _SIZE / 2}" y="{side - 6}" text-anchor="middle" font-size="11">'
        "confidence (score)</text>",
        f'<text x="10" y="{_PAD + _SIZE / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 10 {_PAD + _SIZE / 2})">accuracy</text>',
    ]
    for level_score in range(1, 6):
        parts.append(
            f'<text x="{_x(confidence_of(level_score))}" y="{_PAD + _SIZE + 14}" '
            f'text-anchor="middle" font-size="10">{level_score}</text>'
        )
    for score, level in by_score.items():
        x = _x(confidence_of(int(score)))
        low, high = level["ci95"]
        parts.append(
            f'<line x1="{x}" y1="{_y(low):.1f}" x2="{x}" y2="{_y(high):.1f}" stroke="#36c" '
            'stroke-width="2"/>'
        )
        parts.append(
            f'<circle cx="{x}" cy="{_y(level["accuracy"]):.1f}" r="4" fill="#36c">'
            f"<title>score {escape(score)}: {level['correct']}/{level['n']} correct, "
            f"{_interval(level['ci95'])}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _levels_table(by_score: dict[str, dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{escape(s)}</td><td>{level['n']}</td><td>{level['correct']}</td>"
        f"<td>{_pct(level['accuracy'])}</td><td>{_interval(level['ci95'])}</td></tr>"
        for s, level in by_score.items()
    )
    return (
        "<table><tr><th>score</th><th>n</th><th>correct</th><th>accuracy</th>"
        f"<th>95% interval</th></tr>{rows}</table>"
    )


def html(report: dict[str, Any]) -> str:
    audit = report["audit"]
    fields_rows = "".join(
        f"<tr><td>{escape(key)}</td><td>{stats['n']}</td>"
        f"<td>{_number(stats['auroc'], 3)}</td>"
        f"<td>{'yes' if stats['can_rank'] else 'no'}</td>"
        f"<td>{stats['recommended_min_score'] or 'review all'}</td>"
        f"<td>{_number(stats['recommended_threshold'], 3)}</td>"
        f"<td>{_pct(stats['review_load'])}</td></tr>"
        for key, stats in report["fields"].items()
    )
    figures = "".join(
        f"<figure><figcaption>{escape(key)}</figcaption>{diagram(stats['by_score'], key)}"
        f"{_levels_table(stats['by_score'])}</figure>"
        for key, stats in report["fields"].items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>doctriage trust report</title>
<style>{_STYLE}</style></head><body>
<h1>doctriage trust report</h1>
<p>{report["observations"]} decided fields. Expected calibration error (ECE):
{_number(report["ece"], 3)}. Target error rate: {report["target_error"]:g}.</p>
<h2>Audit of the auto zone</h2>
<p>{audit["n"]} decided fields of documents sampled for audit: {audit["errors"]} wrong,
rate {_pct(audit["rate"])}, 95% interval {_interval(audit["ci95"])}.
<span class="note">Fields that passed as auto and were wrong, as a share of all audited.</span></p>
<h2>All fields, by score</h2>
{diagram(report["by_score"], "all fields")}{_levels_table(report["by_score"])}
<h2>Recommendations</h2>
<p class="note">Review load: the share of the field's observed values the recommendation would send
to review (100% when it cannot rank: review all).</p>
<table><tr><th>field</th><th>n</th><th>AUROC</th><th>can rank</th><th>min score</th>
<th>threshold</th><th>review load</th></tr>{fields_rows}</table>
<h2>Reliability per field</h2>
<p class="note">Dots: accuracy at each score level, bars: its 95% Wilson interval, dashed: what a
calibrated confidence would give.</p>
<div class="fields">{figures}</div>
</body></html>
"""
