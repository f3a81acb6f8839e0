"""Write samples/reviewed-invoices.jsonl: invoice records with reviewers' decisions, for
`doctriage trust`'s worked example in the README (byte-identical on every run).

    .venv/bin/python scripts/make_trust_sample.py [--out samples/reviewed-invoices.jsonl]

Synthetic, from a fixed seed: each field's score is drawn, then whether the extracted value was
right, at an error rate that falls as the score rises and differs by field (total_amount is
scored well, due_date's scores barely rank its errors, invoice_number is rarely decided). A
record with a field below 0.85 is needs_review and flagged so; one without is auto and sampled
for audit. Reviewers decide every field (the audit page asks for all of them), except most
invoice numbers, left undecided. The records carry what `doctriage trust` reads (fields with
values and scores, the review) and validate against contracts/record.schema.json.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "samples" / "reviewed-invoices.jsonl"
RECORDS = 120
SCORE_WEIGHTS = {5: 55, 4: 20, 3: 12, 2: 8, 1: 5}
# field -> error rate by score (due_date: nearly flat, its scores cannot rank its errors)
ERROR_RATES = {
    "total_amount": {5: 0.0, 4: 0.04, 3: 0.2, 2: 0.4, 1: 0.6},
    "due_date": {5: 0.12, 4: 0.12, 3: 0.14, 2: 0.12, 1: 0.14},
    "line_items[].amount": {5: 0.0, 4: 0.02, 3: 0.1, 2: 0.3, 1: 0.5},
}
DECIDED_SHARE = {"total_amount": 1.0, "due_date": 1.0, "invoice_number": 0.1}


def _cell(rng: random.Random, value: Any, field: str) -> tuple[dict[str, Any], bool]:
    score = rng.choices(list(SCORE_WEIGHTS), weights=list(SCORE_WEIGHTS.values()))[0]
    wrong = rng.random() < ERROR_RATES.get(field, {}).get(score, 0.05)
    result = {"value": value, "found": True, "confidence": (score - 1) / 4, "score": score}
    return result, not wrong


def record(rng: random.Random, number: int) -> dict[str, Any]:
    total = round(rng.uniform(50, 5000), 2)
    fields: dict[str, Any] = {}
    right: dict[str, bool] = {}
    fields["invoice_number"], right["invoice_number"] = _cell(rng, f"INV-{1000 + number}", "")
    fields["total_amount"], right["total_amount"] = _cell(rng, total, "total_amount")
    fields["due_date"], right["due_date"] = _cell(rng, f"2026-{1 + number % 12:02d}-15", "due_date")
    rows = []
    for i, amount in enumerate((round(total * 0.6, 2), round(total * 0.4, 2))):
        cell, right[f"line_items[{i}].amount"] = _cell(rng, amount, "line_items[].amount")
        rows.append({"amount": cell})
    fields["line_items"] = {
        "value": [{"amount": row["amount"]["value"]} for row in rows],
        "found": True,
        "confidence": min(row["amount"]["confidence"] for row in rows),
        "score": None,
        "items": rows,
    }
    flags = [f"low_confidence_field:{p}" for p in right if _field(fields, p)["confidence"] < 0.85]
    audit = not flags
    accepted, corrected = [], {}
    for path, ok in right.items():
        if not audit and rng.random() >= DECIDED_SHARE.get(path, 1.0):
            continue  # left undecided: not an observation
        if ok:
            accepted.append(path)
        else:
            value = _field(fields, path)["value"]
            corrected[path] = round(value + 10, 2) if isinstance(value, float) else f"{value}?"
    document_id = f"sample-{number:04d}"
    return {
        "document_id": document_id,
        "status": "complete",
        "review_status": "auto" if audit else "needs_review",
        "flags": flags,
        "document_type": "invoice",
        "human_review_threshold": 0.85,
        "fields": fields,
        "source": {"bucket": "sample", "key": f"incoming/invoice/{document_id}.pdf"},
        "audit_sample": audit,
        "review": {
            "reviewer": "sample",
            "decided_at": "2026-12-01T12:00:00Z",
            "accepted": accepted,
            "corrected": corrected,
        },
    }


def _field(fields: dict[str, Any], path: str) -> dict[str, Any]:
    if path.startswith("line_items["):
        row = int(path.split("[")[1].split("]")[0])
        result: dict[str, Any] = fields["line_items"]["items"][row]["amount"]
        return result
    return dict(fields[path])


def write(out: Path = OUT) -> Path:
    rng = random.Random(3)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(record(rng, n), separators=(",", ":")) for n in range(1, RECORDS + 1)]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    print(write(parser.parse_args().out))
