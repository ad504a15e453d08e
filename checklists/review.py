"""The import review: what the person importing kept of what was recognised, and where each finding stands.

Recognition (``checklists.recognition``) reports findings kind by kind with their source lines. Before a
version is saved, the preview lists the ones that become part of the war room — gates, required
approvals, role merges, contacts, metric thresholds and rollout stages — each with a box, ticked by
default; an unticked box drops that finding. ``apply_choices`` keeps the ticked ones (the dropped ones
are stored under ``"dropped"``, so the version says what was turned down), and ``place`` notes where
each kept finding sits in the stored structure (phase, step and line positions), which is what a
deployment made from the version needs to find them again: a deployment has no source lines.
Pure Python, no Django.
"""

from __future__ import annotations

import copy

from checklists import vocabulary as V

# Kinds the preview offers a box for, in the order it lists them.
REVIEWED_KINDS = ("gates", "approvals", "role_merges", "contacts", "thresholds", "rollout_stages")
# A gate written as "☐ GO ☐ NO-GO" is the runbook's own syntax for a gate: it is always one.
EXPLICIT_GATE = "GO / NO-GO boxes"


def choice_key(kind: str, index: int) -> str:
    """The value of a finding's box on the preview: its kind and its place in that kind's list."""
    return f"{kind}:{index}"


def reviewable(found: dict) -> dict[str, list[tuple[str, dict]]]:
    """Per kind, (box value, finding) for every finding the person may drop."""
    offered = {}
    for kind in REVIEWED_KINDS:
        entries = [
            (choice_key(kind, index), entry)
            for index, entry in enumerate(found.get(kind) or [])
            if not (kind == "gates" and entry.get("how") == EXPLICIT_GATE)
        ]
        if entries:
            offered[kind] = entries
    return offered


def apply_choices(found: dict, kept: set[str] | None) -> dict:
    """A copy of ``found`` without the findings whose box was unticked (``kept`` None: all kept).

    Dropped findings move to ``found["dropped"][kind]``. A dropped role merge splits the role
    again: each variant becomes a role of its own.
    """
    result = copy.deepcopy(found)
    if kept is None:
        return result
    offered = reviewable(found)
    dropped: dict[str, list[dict]] = {}
    for kind, entries in offered.items():
        gone = {key for key, _entry in entries if key not in kept}
        if not gone:
            continue
        keep_list = []
        for index, entry in enumerate(result.get(kind) or []):
            (dropped.setdefault(kind, []) if choice_key(kind, index) in gone else keep_list).append(entry)
        result[kind] = keep_list
    for merge in dropped.get("role_merges", []):
        roles = []
        for role in result.get("roles") or []:
            if role["name"] == merge["name"]:
                variants = role.get("variants") or [role["name"]]
                roles += [{"name": v, "lines": role.get("lines", []), "variants": [v]} for v in variants]
            else:
                roles.append(role)
        result["roles"] = roles
    result["dropped"] = dropped
    return result


def role_names(found: dict) -> dict[str, str]:
    """Every way a kept role was written (casefolded) → the one name it is stored under."""
    names = {}
    for role in found.get("roles") or []:
        for variant in [role["name"], *(role.get("variants") or [])]:
            names.setdefault(variant.strip().casefold(), role["name"])
    return names


def is_placeholder(name: str) -> bool:
    """``[Name]``, ``<owner>``, ``TBD``, ``____``: something to fill in, never a role anyone holds."""
    text = name.strip()
    if not text or any(mark in text for mark in "[]<>{}") or "__" in text:
        return True
    return bool(V.PLACEHOLDER_TOKEN_RE.search(text)) or text.casefold() in V.PLACEHOLDER_WORDS


def place(found: dict, sections: list[dict], line_positions: dict[int, tuple[int, int, int]]) -> dict:
    """Note on each kept finding where it sits: ``phase`` and ``step`` positions, and the ``item``
    position of the checklist line written on the same source line, if any — dropped ones too, so
    a deployment can tell a dropped approval's line from the others.

    ``sections`` are the stored steps in reading order: ``{"phase", "step", "line", "phase_title",
    "title", "offset_minutes", "has_items"}``; ``line_positions`` maps a source line to the
    (phase, step, position) of the checklist line stored from it. Approvals also get
    ``blocks_start`` (see ``blocks_start``).
    """
    dropped = found.get("dropped") or {}
    for kind in ("gates", "approvals", "contacts", "thresholds", "rollout_stages"):
        for entry in [*(found.get(kind) or []), *(dropped.get(kind) or [])]:
            section = _section_of(entry.get("line") or 0, sections)
            if section is not None:
                entry["phase"], entry["step"] = section["phase"], section["step"]
            at = line_positions.get(entry.get("line") or 0)
            if at is not None:
                entry["phase"], entry["step"], entry["item"] = at
    for entry in found.get("approvals") or []:
        entry["blocks_start"] = blocks_start(entry, sections)
    found["placed"] = True  # versions imported before findings were placed have none of this
    return found


def _section_of(line: int, sections: list[dict]) -> dict | None:
    current = None
    for section in sections:
        if section["line"] and section["line"] <= line:
            current = section
        elif section["line"] > line:
            break
    return current


def blocks_start(approval: dict, sections: list[dict]) -> bool:
    """Whether a required approval must be given before the deployment may start.

    Decided by where the runbook puts it, in this order:

    1. under a heading that says it comes first ("Pre-deployment", "Prerequisites", "Required
       approvals", "Readiness", "Change approval"): it blocks the start;
    2. under a heading that closes the deployment ("Sign-Off", "Post-deployment", "Completion",
       "Wrap-up", "Handover", "Acceptance") with checklist work above it: it does not — it
       confirms the outcome at the end (the signed report's sign-offs), and a deployment cannot
       finish what it may not start;
    3. in a step the runbook times at T-0 or later, or after such a step: it does not — it is
       given during the deployment, once the start has passed;
    4. anywhere else (before the work, no heading saying otherwise): it blocks the start.
    """
    here = _section_of(approval.get("line") or 0, sections)
    if here is None:
        return True
    headings = f"{here['phase_title']} / {here['title']}"
    if V.BEFORE_START_SECTION_RE.search(headings):
        return True
    index = sections.index(here)
    work_before = any(s["has_items"] for s in sections[:index])
    if V.AFTER_START_SECTION_RE.search(headings) and work_before:
        return False
    start = next((i for i, s in enumerate(sections) if s["offset_minutes"] is not None and s["offset_minutes"] >= 0), None)
    return not (start is not None and index >= start)
