"""Versions of a deployment's final report, and what changed between them, in words.

A finished deployment's record still grows: sign-offs arrive, the post-deployment review is
written. Each signed PDF made from a record that moved on is the next version; the earlier
ones stay as they were (their files, their rows) and keep verifying, because the event log
they quote is a prefix of the current one.

What changed is told part by part: the checklist, each report section (reports.sections),
the sign-offs. Each part is reduced to a digest of its zone-free data (the section's
records, not its printed tables, whose times depend on the reader's time zone), and a part
whose digest differs from the version before is "added", "updated" or "removed".
"""

from __future__ import annotations

import hashlib
import json

FIRST_VERSION = "first version of the final report"


def _digest(value) -> str:
    """'' for nothing recorded, else a SHA-256 of the value as canonical JSON."""
    if not value:
        return ""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _without(row: dict, key: str) -> dict:
    return {k: v for k, v in row.items() if k != key}


def parts(record: dict) -> list[tuple[str, str, object]]:
    """(key, name in words, data) of each part of the record whose change is worth saying."""
    # The runbook's "Product Owner: ____" lines point at the sign-offs given (record._link_sign_off_lines):
    # that is the sign-offs changing, not the checklist.
    checklist = [
        {**phase, "steps": [{**step, "items": [_without(item, "sign_off") for item in step["items"]]} for step in phase["steps"]]}
        for phase in record["phases"]
    ]
    found = [("checklist", "checklist", checklist)]
    for section in record["sections"]:
        data = {"records": section["records"], "passages": section.get("passages", [])}
        found.append((f"section:{section['key']}", section["title"].lower(), data if any(data.values()) else None))
    found.append(("sign_offs", "sign-offs", record["sign_offs"]["signed"]))
    return found


def content_digests(record: dict) -> dict[str, str]:
    return {key: _digest(data) for key, _, data in parts(record)}


def describe_changes(before: dict[str, str] | None, record: dict, *, events_before: int | None = None) -> str:
    """What this record holds that the version before (its digests) did not, in words."""
    if before is None:
        return FIRST_VERSION
    said = []
    for key, name, data in parts(record):
        old, new = before.get(key, ""), _digest(data)
        if old == new:
            continue
        said.append(f"{name} {'added' if not old else 'removed' if not new else 'updated'}")
    if not said:
        newer = record["chain"]["count"] - (events_before or 0)
        said.append(f"{newer} more event{'s' if newer != 1 else ''} in the log" if newer > 0 else "the same record again")
    text = "; ".join(said)
    return text[:300]
