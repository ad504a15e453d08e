"""What a runbook means, read from the markdown-it token stream: gates, approvals, times, roles, contacts,
thresholds, rollout stages and fields to fill in.

The parser (``checklists.parsing``) cuts a runbook into phases, steps and items; this module reads the
same tokens line by line, wherever a thing is written (a heading, a bold label, a list item's prefix, a
table cell, a paragraph), and reports each finding with its 1-based source line and the notation it read.
Code blocks, HTML comments and YAML front matter are never read. The words live in
``checklists.vocabulary``. Pure Python, no Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice

from checklists import vocabulary as V

__all__ = ["Recognised", "recognise", "title_offset"]


@dataclass
class _Line:
    number: int  # 1-based source line
    text: str  # inline Markdown, checkbox and list marker removed
    kind: str  # heading | item | entry | cell | paragraph
    depth: int  # heading level, or list depth
    first: bool  # the first line of its block
    boxed: bool = False
    heading: str = ""  # the nearest heading above
    headings: tuple[str, ...] = ()
    label: str = ""  # the nearest lead-in ("**Entry Criteria**:") this line sits under
    label_depth: int = -1
    conditions: tuple[str, ...] = ()  # <mark>🟥 Security</mark>-style tags: do this only for that case
    ordinal: int | None = None  # the number of an ordered list entry ("2." gives 2)
    cells: tuple[str, ...] = ()  # a table row ("row" lines): its cells, and the header's
    header: tuple[str, ...] = ()


@dataclass
class Recognised:
    """Every finding carries ``line``; see ``as_dict`` for the JSON the import reports."""

    gates: list[dict] = field(default_factory=list)
    approvals: list[dict] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)
    roles: list[dict] = field(default_factory=list)
    role_merges: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    thresholds: list[dict] = field(default_factory=list)
    rollout_stages: list[dict] = field(default_factory=list)
    fields: list[dict] = field(default_factory=list)
    conditions: list[dict] = field(default_factory=list)
    repairs: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "gates": self.gates,
            "approvals": self.approvals,
            "timeline": self.timeline,
            "roles": self.roles,
            "role_merges": self.role_merges,
            "contacts": self.contacts,
            "thresholds": self.thresholds,
            "rollout_stages": self.rollout_stages,
            "fields": self.fields,
            "conditions": self.conditions,
            "repairs": self.repairs,
        }


# --- lines from tokens ------------------------------------------------------------------------------

_BOX_RE = re.compile(r"^\s*(?:\[[ xX]\]|[☐☑☒□])\s*")
_MARK_RE = re.compile(r"<mark>(?P<condition>.*?)</mark>\s*:?|<!--.*?-->|</?mark>", re.IGNORECASE)
_CODE_SPAN_RE = re.compile(r"`[^`]*`")
_URL_IN_LINK_RE = re.compile(r"\]\([^)]*\)")
_BOLD_LABEL_RE = re.compile(r"^\s*\*{0,2}(?P<label>[^*:]{1,60}?)\*{0,2}\s*:\s*\*{0,2}\s*(?P<value>.*)$")
_LEAD_IN_RE = re.compile(r"^\s*\*{0,2}(?P<label>[^*]{1,80}?)\s*:?\s*\*{0,2}\s*:\s*\*{0,2}\s*$")
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(?:.*\n){0,80}?(?:---|\.\.\.)[ \t]*(?:\n|\Z)")


def _front_matter_lines(text: str) -> int:
    match = _FRONT_MATTER_RE.match(text)
    return match.group().count("\n") + (0 if match.group().endswith("\n") else 1) if match else 0


_PASSING_TOKENS = frozenset({"paragraph_open", "paragraph_close", "list_item_close", "hr", "html_block"})


def _lines(tokens, skip_until: int) -> tuple[list[_Line], list[tuple[int, str, str]]]:
    """Inline content line by line with its container, and the code blocks (line, info, code)."""
    lines: list[_Line] = []
    code: list[tuple[int, str, str]] = []
    headings: dict[int, str] = {}
    list_depth = 0
    container = "paragraph"
    heading_level = 0
    label, label_depth = "", -1
    row: list[str] = []
    row_line = 0
    in_body = False
    ordinal: int | None = None
    quote_depth = 0
    current: tuple[str, tuple[str, ...]] = ("", ())  # the nearest heading, and the path of headings to it
    header: tuple[str, ...] = ()
    for token in tokens:
        kind = token.type
        if kind in _PASSING_TOKENS:  # most of a document; nothing to track
            continue
        if skip_until and token.map and token.map[0] < skip_until:
            continue
        if kind == "list_item_open":
            ordinal = int(token.info) if token.info.isdigit() else None
        elif kind == "blockquote_open":
            quote_depth += 1
        elif kind == "blockquote_close":
            quote_depth -= 1
        elif kind in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif kind == "heading_open":
            container, heading_level = "heading", int(token.tag[1])
        elif kind == "heading_close":
            container = "paragraph"
        elif kind in ("th_open", "td_open"):
            container = "cell"
            row.append("")
        elif kind in ("th_close", "td_close"):
            container = "paragraph"
        elif kind == "tr_open":
            row, row_line = [], (token.map[0] + 1 if token.map else 0)
        elif kind == "thead_close":
            header = tuple(_plain(cell) for cell in row)
        elif kind == "tbody_open":
            in_body = True
        elif kind == "table_close":
            in_body, header = False, ()
        elif kind == "tr_close" and in_body and row_line and header:
            cells = tuple(_clean(cell) for cell in row)
            heading = headings[max(headings)] if headings else ""
            lines.append(_Line(row_line, " ".join(c for c in cells if c), "row", 0, True, heading=heading,
                               headings=tuple(headings[k] for k in sorted(headings)), cells=cells, header=header))  # fmt: skip
        elif kind in ("fence", "code_block"):
            code.append((token.map[0] + 1, token.info.strip() if kind == "fence" else "", token.content))
        elif kind == "inline" and token.map:
            raw_lines = token.content.split("\n")
            base = token.map[0] + 1
            if container == "heading":
                text = " ".join(token.content.split())
                for level in [lvl for lvl in headings if lvl >= heading_level]:
                    del headings[level]
                headings[heading_level] = text
                current = (text, tuple(headings[k] for k in sorted(headings)))
                label, label_depth = "", -1
                lines.append(_Line(base, _clean(text), "heading", heading_level, True, heading=text,
                                   headings=tuple(headings[k] for k in sorted(headings))))  # fmt: skip
                continue
            if container == "cell":
                row[-1] = token.content.strip()
            kind_here = "cell" if container == "cell" else ("entry" if list_depth else "paragraph")
            heading, path = current
            for offset, raw in enumerate(raw_lines):
                stripped = raw.strip()
                if not stripped:
                    continue
                boxed = offset == 0 and (stripped[0] in "[☐☑☒□") and bool(_BOX_RE.match(stripped))
                body = _BOX_RE.sub("", stripped, count=1) if boxed else stripped
                text = _clean(body) if "<" in body else body
                if not text:
                    continue
                conditions = (
                    tuple(" ".join(c.split()) for c in re.findall(r"<mark>(.*?)</mark>", body, re.IGNORECASE))
                    if "<" in body
                    else ()
                )
                if quote_depth and offset == 0 and text[0].isdigit():
                    text = f"> {text}"  # "- > 99.9% success" is a quote to Markdown, a comparison to its author
                if list_depth and label and list_depth <= label_depth and offset == 0 and not boxed:
                    label, label_depth = "", -1
                line = _Line(base + offset, text, "item" if boxed else kind_here, list_depth, offset == 0, boxed,
                             heading, path, label, label_depth, conditions,
                             ordinal if offset == 0 and list_depth else None)  # fmt: skip
                lines.append(line)
                lead = _LEAD_IN_RE.match(text)
                if lead and offset == 0 and not boxed and kind_here != "cell":
                    label, label_depth = lead.group("label").strip(), list_depth
                elif kind_here == "paragraph" and offset == 0 and not lead and label_depth == 0 and not list_depth:
                    label, label_depth = "", -1
    return lines, code


def _clean(text: str) -> str:
    """Drop <mark> tags and HTML comments; keep the rest of the inline Markdown as written."""
    return _MARK_RE.sub("", text).strip()


_UNDERSCORE_BOLD_RE = re.compile(r"(?<![_\w])__(?=[^\W_])|(?<=[^\W_])__(?![_\w])")


def _plain(text: str) -> str:
    """Text without code spans, link targets and emphasis marks: what a reader reads."""
    text = _CODE_SPAN_RE.sub(" ", text)
    text = _URL_IN_LINK_RE.sub("]", text).replace("[", "").replace("]", "")
    return " ".join(_UNDERSCORE_BOLD_RE.sub("", text.replace("**", "")).split())


# --- the recogniser ------------------------------------------------------------------------------------


def recognise(text: str, tokens, *, parsed_roles=(), parsed_fields=(), parsed_gates=(), parsed_timeline=(),
              start_minutes: int | None = None) -> Recognised:  # fmt: skip
    """Read the meaning of a decoded runbook from its markdown-it tokens (see the module doc)."""
    found = Recognised()
    lines, code = _lines(tokens, _front_matter_lines(text))
    roles = _RoleCatalogue()
    for name, line in parsed_roles:
        roles.add(name, line, strong=True)
    gate_lines: set[int] = set()
    last_gate: _Line | None = None
    for line, label in parsed_gates:
        found.gates.append({"line": line, "text": label, "criteria": "", "how": "GO / NO-GO boxes"})
        gate_lines.add(line)
    field_lines: set[int] = set()  # lines with a blank the parser read: its field says it all
    placeholders: set[tuple[int, str]] = set()
    for label, line in parsed_fields:
        found.fields.append({"line": line, "label": label, "how": "blank"})
        field_lines.add(line)
    timeline_lines: set[int] = set()
    for entry in parsed_timeline:
        if entry.offset_minutes is not None and entry.line:
            found.timeline.append(
                {"line": entry.line, "offset_minutes": entry.offset_minutes, "text": entry.label,
                 "notation": "timeline entry", "read": entry.label, "activity": entry.activity}
            )  # fmt: skip
            timeline_lines.add(entry.line)
    stage_sections: dict[str, dict] = {}
    for position, line in enumerate(lines):
        plain = _plain(line.text)
        if not plain:
            continue
        if line.kind == "row":
            _row(line, plain, found, roles)
            continue
        if line.conditions and line.first:
            found.conditions.append({"line": line.number, "conditions": list(line.conditions), "text": plain})
        context = " ".join((line.heading, line.label))
        # gates
        if line.number not in gate_lines:
            how = _gate_how(line, plain, lines, position)
            if how and not (how == "branch" and last_gate is not None and _same_branch(last_gate, line)):
                criteria = ""
                proceed = V.PROCEED_IF_RE.search(plain)
                if proceed:
                    criteria = proceed.group("criteria").strip(" .")
                found.gates.append({"line": line.number, "text": plain, "criteria": criteria, "how": how})
                gate_lines.add(line.number)
                last_gate = line
            elif how == "branch":
                last_gate = line
        # approvals
        approval = _approval(line, plain, context)
        if approval:
            role, how = approval
            found.approvals.append({"line": line.number, "role": role, "text": plain, "how": how})
            if role and _looks_like_role(role):
                roles.add(role, line.number, strong=True)
        # timeline
        if line.number not in timeline_lines:
            titled = line.kind == "heading" or bool(_BOLD_LABEL_RE.match(line.text))
            times = _times(plain, heading=titled)
            if not times and start_minutes is not None and line.first and line.kind != "paragraph":
                times = _clock_time(plain, start_minutes)
            if times:
                first = times[0]
                entry = {"line": line.number, "offset_minutes": first[0], "text": plain, "notation": first[2],
                         "read": first[3]}  # fmt: skip
                if first[1] is not None and first[1] != first[0]:
                    entry["end_offset_minutes"] = first[1]
                if len(times) > 1:
                    entry["also"] = [{"offset_minutes": t[0], "notation": t[2], "read": t[3]} for t in times[1:]]
                found.timeline.append(entry)
                timeline_lines.add(line.number)
        # contacts
        contact = _contact(line, plain, context)
        if contact:
            found.contacts.append(contact)
            if contact["role"]:
                roles.add(contact["role"], line.number, strong=True)
        # thresholds (a table's are read from its whole rows)
        for threshold in _thresholds(plain) if line.kind != "cell" else ():
            found.thresholds.append({"line": line.number, **threshold})
        # rollout stages
        stage = _stage(line, plain)
        if stage is not None and stage_sections.get(line.heading, {}).get("percent") == stage:
            pass  # "**Traffic**: 5% of users" under "Stage 1 (5%)": the same stage
        elif stage is not None:
            entry = {"line": line.number, "percent": stage, "hold_minutes": _inline_hold(plain), "text": plain}
            found.rollout_stages.append(entry)
            if line.kind == "heading" or line.heading not in stage_sections:
                stage_sections[line.heading] = entry
        elif line.heading in stage_sections and line.first:
            labelled = _BOLD_LABEL_RE.match(line.text)
            if labelled and V.HOLD_LABEL_RE.match(labelled.group("label").strip()):
                hold = _hold_minutes(labelled.group("value"))
                if hold is not None and stage_sections[line.heading]["hold_minutes"] is None:
                    stage_sections[line.heading]["hold_minutes"] = hold
        # fields
        if line.number not in field_lines:
            labels = _placeholder_fields(line.text) or [_empty_value(line, lines[position + 1 : position + 2])]
            for label in filter(None, labels):
                if (line.number, label) not in placeholders:  # a table row's cells are separate lines
                    found.fields.append({"line": line.number, "label": label, "how": "placeholder"})
                    placeholders.add((line.number, label))
        # roles
        _collect_roles(line, plain, roles)
    # Gate criteria: the criteria list under a stage heading that is a gate.
    _attach_criteria(found, lines)
    found.rollout_stages += _nginx_stages(code)
    found.gates = _one_gate_per_decision(found.gates, lines)
    found.gates.sort(key=lambda g: g["line"])
    found.timeline.sort(key=lambda t: t["line"])
    found.fields.sort(key=lambda f: f["line"])
    found.roles, found.role_merges = roles.finish()
    return found


_STAGE_COLUMN_RE = re.compile(r"traffic|weight|percent|share|exposure|%|users", re.IGNORECASE)
_HOLD_COLUMN_RE = re.compile(r"hold|duration|bake|soak|wait|observe", re.IGNORECASE)
_LEVEL_COLUMN_RE = re.compile(r"^(?:level|tier|step|order|#|escalation(?:\s+level)?)$", re.IGNORECASE)
_LEVEL_CELL_RE = re.compile(r"^(?:L|level\s*|tier\s*|T)?(\d{1,2})\b", re.IGNORECASE)
_WHO_COLUMN_RE = re.compile(r"who|name|contact|person|role|owner|escalate", re.IGNORECASE)
_CHANNEL_COLUMN_RE = re.compile(r"reach|channel|how|method|phone|slack|pager|email|via", re.IGNORECASE)
_WINDOW_COLUMN_RE = re.compile(r"window|time|after|when|sla|response", re.IGNORECASE)


def _column(header: tuple[str, ...], pattern: re.Pattern[str]) -> int | None:
    return next((index for index, name in enumerate(header) if pattern.search(name)), None)


def _row(line: _Line, plain: str, found: Recognised, roles: _RoleCatalogue) -> None:
    """A table row read with its header: thresholds, traffic stages, escalation contacts."""
    for threshold in _thresholds(plain):
        found.thresholds.append({"line": line.number, **threshold})
    cells = [_plain(cell) for cell in line.cells]
    stage_column = _column(line.header, _STAGE_COLUMN_RE)
    if stage_column is not None and stage_column < len(cells):
        percent = V.PERCENT_RE.search(cells[stage_column])
        if percent and float(percent.group("percent")) <= 100:
            value = float(percent.group("percent"))
            hold_column = _column(line.header, _HOLD_COLUMN_RE)
            hold = _hold_minutes(cells[hold_column]) if hold_column is not None and hold_column < len(cells) else None
            if hold is None and hold_column is not None and hold_column < len(cells) and cells[hold_column].strip() == "0":
                hold = 0
            found.rollout_stages.append({"line": line.number, "percent": int(value) if value.is_integer() else value,
                                         "hold_minutes": hold, "text": plain})  # fmt: skip
    if V.CONTACT_SECTION_RE.search(line.heading):

        def cell(pattern):
            index = _column(line.header, pattern)
            return cells[index] if index is not None and index < len(cells) else ""

        level_cell = _LEVEL_CELL_RE.match(cell(_LEVEL_COLUMN_RE))
        level_text = level_cell.group(1) if level_cell else ""
        who = cell(_WHO_COLUMN_RE)
        window = V.WINDOW_RE.search(cell(_WINDOW_COLUMN_RE) or plain)
        entry = {"line": line.number, "name": who, "role": who if _looks_like_role(who) else "",
                 "channel": cell(_CHANNEL_COLUMN_RE), "level": int(level_text) if level_text.isdigit() else None,
                 "text": plain, "how": "contact table"}  # fmt: skip
        if window and window.group("a"):
            per = 60 if window.group("unit")[0].lower() == "h" else 1
            entry["window_minutes"] = [int(window.group("a")) * per, int(window.group("b")) * per]
        found.contacts.append(entry)
        if entry["role"]:
            roles.add(who, line.number, strong=True)


@lru_cache(maxsize=4096)
def _says(pattern: re.Pattern[str], text: str) -> bool:
    """Whether a heading or lead-in says so; asked for every line under it, hence cached."""
    return bool(text) and pattern.search(text) is not None


# --- gates -----------------------------------------------------------------------------------------------


def _gate_how(line: _Line, plain: str, lines: list[_Line], position: int) -> str | None:
    if line.kind == "heading" and _has_criteria_under(islice(lines, position + 1, None)):
        return "stage criteria"
    if not V.GATE_HINT_RE.search(plain):
        return None
    if V.GO_NO_GO_RE.search(plain) and not V.GO_NO_GO_LOGISTICS_RE.search(plain):
        return "go/no-go"
    if V.DECISION_RE.search(plain):
        return "decision"
    if V.TITLED_DECISION_RE.match(plain) and (line.kind == "heading" or _BOLD_LABEL_RE.match(line.text) or not line.boxed):
        return "decision"
    if V.CRITERIA_TRIGGER_RE.search(plain):
        return "criteria trigger"
    if line.first and line.kind in ("item", "entry") and V.BRANCH_RE.match(plain.rstrip("*")):
        return "branch"
    if (line.kind == "heading" or _LEAD_IN_RE.match(line.text)) and V.ROLLBACK_LIST_RE.search(plain):
        return "rollback decision" if _list_follows(line, islice(lines, position + 1, position + 2)) else None
    return None


def _one_gate_per_decision(gates: list[dict], lines: list[_Line]) -> list[dict]:
    """A heading or lead-in naming a go/no-go whose section holds GO / NO-GO boxes is that same gate."""
    by_number = {line.number: line for line in lines}
    boxed_sections = set()
    for gate in gates:
        if gate["how"] == "GO / NO-GO boxes" and gate["line"] in by_number:
            boxed_sections.update(by_number[gate["line"]].headings)
    kept = []
    for gate in gates:
        line = by_number.get(gate["line"])
        titled = line is not None and (line.kind == "heading" or _LEAD_IN_RE.match(line.text))
        if (
            titled
            and gate["how"] in ("go/no-go", "decision")
            and (line.heading in boxed_sections or (line.kind == "heading" and line.text in boxed_sections))
        ):
            continue
        kept.append(gate)
    return kept


def _same_branch(previous: _Line, line: _Line) -> bool:
    """ "If X: …" then "If not X, proceed": the second is the other branch of the same decision."""
    return previous.heading == line.heading and previous.depth == line.depth and line.number - previous.number <= 12


def _has_criteria_under(following) -> bool:
    for line in following:
        if line.kind == "heading":
            return False
        if "riteria" not in line.text:
            continue
        lead = _BOLD_LABEL_RE.match(line.text)
        if lead and V.CRITERIA_LABEL_RE.match(lead.group("label").strip()) and line.first:
            label = lead.group("label").strip().lower()
            if label.startswith(("exit", "promotion", "success", "go")) or label.startswith("entry"):
                return True
    return False


def _list_follows(heading: _Line, following) -> bool:
    for line in following:
        return line.kind in ("item", "entry") and line.number - heading.number <= 3
    return False


def _attach_criteria(found: Recognised, lines: list[_Line]) -> None:
    """A stage gate's criteria are the lines listed under its exit/entry criteria labels."""
    by_heading: dict[int, list[str]] = {}
    current = None
    for line in lines:
        if line.kind == "heading":
            current = line.number
            continue
        if current is not None and line.label and V.CRITERIA_LABEL_RE.match(line.label):
            by_heading.setdefault(current, []).append(f"{line.label}: {_plain(line.text)}")
    by_number = {line.number: position for position, line in enumerate(lines)}
    for gate in found.gates:
        position = by_number.get(gate["line"])
        lead = _LEAD_IN_RE.match(lines[position].text) if position is not None else None
        if lead and not gate["criteria"]:  # "Immediate rollback if:" over the reasons
            label = lead.group("label").strip()
            under = []
            for line in islice(lines, position + 1, None):
                if line.label != label or line.kind == "heading" or _LEAD_IN_RE.match(line.text):
                    break
                if line.first:
                    under.append(_plain(line.text))
            gate["criteria"] = "; ".join(under)
        if gate["how"] == "stage criteria" and not gate["criteria"]:
            gate["criteria"] = "; ".join(by_heading.get(gate["line"], []))
        elif gate["how"] in ("rollback decision", "decision") and not gate["criteria"] and position is not None:
            if lines[position].kind == "heading":  # "## Rollback decision" over the reasons
                under = []
                for line in islice(lines, position + 1, None):
                    if line.kind == "heading":
                        break
                    if line.first and line.kind in ("item", "entry"):
                        under.append(_plain(line.text))
                gate["criteria"] = "; ".join(under)


# --- approvals ---------------------------------------------------------------------------------------------


_APPROVAL_HINTS = ("sign", "approv", "authori", "clearance", "agree", "review", "confirm with")


def _approval(line: _Line, plain: str, context: str) -> tuple[str, str] | None:
    in_section = _says(V.APPROVAL_SECTION_RE, line.heading) or _says(V.APPROVAL_SECTION_RE, line.label)
    lower = plain.lower()
    if not in_section and "___" not in plain and not any(hint in lower for hint in _APPROVAL_HINTS):
        return None
    blanks = V.SIGN_OFF_BLANKS_RE.match(plain)
    if not blanks and in_section:
        named = V.BLANK_AFTER_NAME_RE.match(plain)
        blanks = named if named and _looks_like_role(_role_name(named.group("role"))) else None
    if blanks:
        role = _role_name(blanks.group("role"))
        return ("" if V.APPROVAL_LABEL_RE.match(role) else role), "sign-off line"
    if line.kind == "heading" or not line.first or plain.rstrip("*").endswith(":"):
        return None
    if V.NOT_APPROVAL_RE.search(plain):
        return None
    match = V.APPROVAL_LINE_RE.search(plain)
    how = "approval wording" if match else "under an approvals heading"
    if not match and not (in_section and line.kind in ("item", "entry", "cell")):
        return None
    role = _approver(plain, match)
    if not role or V.APPROVAL_LABEL_RE.match(role) or role.lower() in {"all", "everyone", "get final", "get"}:
        phrases = _role_phrases(plain, alone=True)
        role = phrases[0] if phrases else ""
    return role, how


def _approver(plain: str, match) -> str:
    """Who approves: a labelled name ("**Radiology Lead**: Approved"), the subject, or "from/by/with X"."""
    labelled = _BOLD_LABEL_RE.match(plain)
    if labelled and labelled.group("label").strip():
        return _role_name(labelled.group("label"))
    after = V.APPROVER_AFTER_RE.search(plain)
    if after and (match is None or after.start() >= match.start() - 40):
        return _role_name(after.group("who"))
    if match is not None:
        subject = plain[: match.start()].strip(" -–—:*")
        subject = re.split(r"\b(?:gives|give|has|have|is|are|to|will|must|should|does|with)\b", subject)[0].strip()
        if 0 < len(subject.split()) <= 5:
            return _role_name(subject)
    return ""


def _role_name(text: str) -> str:
    text = re.sub(r"\([^)]*\)", "", _plain(text)).strip(" -–—:*_")
    return " ".join(text.split())


# --- times ----------------------------------------------------------------------------------------------------


def _times(plain: str, *, heading: bool) -> list[tuple[int, int | None, str, str]]:
    """Every relative time on a line: (offset, end offset or None, notation, the text read)."""
    if not V.TIME_HINT_RE.search(plain):
        return []
    found: list[tuple[int, int | None, str, str, int]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    for match in V.T_NOTATION_RE.finditer(plain):
        if not free(*match.span()):
            continue
        minutes, notation = _t_minutes(match)
        found.append((minutes, None, notation, match.group().strip(), match.start()))
        taken.append(match.span())
    # "T-4h to T+28h": two T-offsets joined by "to" are one range.
    merged: list[tuple[int, int | None, str, str, int]] = []
    for entry in found:
        if merged and merged[-1][1] is None and merged[-1][2].startswith("T"):
            between = plain[merged[-1][4] + len(merged[-1][3]) : entry[4]]
            if V.RANGE_JOIN_RE.match(between):
                previous = merged.pop()
                merged.append((previous[0], entry[0], "T-range", f"{previous[3]}{between}{entry[3]}", previous[4]))
                continue
        merged.append(entry)
    found = merged
    for match in V.DAY_WEEK_RE.finditer(plain):
        if not free(*match.span()) or _DURATION_BEFORE_RE.search(plain, 0, match.start()):
            continue  # "runs 24/7 for Week 1" is a period, not a start
        if match.group("dunit"):
            sign = -1 if match.group("dsign") != "+" else 1
            n = sign * int(match.group("dn"))
            found.append((n * 1440, None, "D±N (days)", match.group(), match.start()))
        else:
            unit = match.group("unit").lower()
            per = 10080 if unit in ("week", "wk", "sprint") else 1440
            if unit == "sprint":
                per = 2 * 10080
            sign = -1 if match.group("sign") in ("-", "−", "–") else 1
            n = sign * int(match.group("n"))
            end = int(match.group("n2")) * per if match.group("n2") else None
            name = {"day": "Day N", "week": "Week N", "wk": "Week N", "sprint": "Sprint N"}[unit]
            found.append((n * per, end, name, match.group().strip(), match.start()))
        taken.append(match.span())
    if heading:
        for match in V.PAREN_WINDOW_RE.finditer(plain):
            if not free(*match.span()):
                continue
            per = V.UNIT_MINUTES[match.group("unit")[0].lower()]
            low, high = float(match.group("a")), float(match.group("b"))
            found.append((round(low * per), round(high * per), "(A-B units) window", match.group(), match.start()))
            taken.append(match.span())
    for match in V.RELATIVE_PHRASE_RE.finditer(plain):
        if not free(*match.span()) or _DURATION_BEFORE_RE.search(plain, 0, match.start()):
            continue
        amount = match.group("n").lower()
        n = V.NUMBER_WORDS.get(amount) or float(amount)
        per = V.UNIT_MINUTES[match.group("unit")[0].lower()] if match.group("unit")[0].lower() != "w" else 10080
        sign = -1 if match.group("dir").lower() in ("before", "prior to", "ahead of") else 1
        found.append((round(sign * n * per), None, "N units before/after", match.group(), match.start()))
        taken.append(match.span())
    for match in V.ORDINAL_PERIOD_RE.finditer(plain) if heading else ():
        if not free(*match.span()):
            continue
        n = V.ORDINALS[match.group("ord").lower()] - 1
        per = 10080 if match.group("unit").lower() == "week" else 1440
        found.append((n * per, None, "ordinal period", match.group(), match.start()))
        taken.append(match.span())
    found.sort(key=lambda entry: entry[4])
    return [entry[:4] for entry in found]


_DURATION_BEFORE_RE = re.compile(r"\b(?:for|within|over|during|lasting|takes?)\s+$", re.IGNORECASE)


def _clock_time(plain: str, start_minutes: int) -> list[tuple[int, int | None, str, str]]:
    """ "21:00 CET: switch DNS" with a stated start of 20:00 → +60 minutes."""
    match = V.LEADING_CLOCK_RE.match(plain)
    if not match or (match.group("m") is None and match.group("half") is None):
        return []
    hour, minute, half = int(match.group("h")), int(match.group("m") or 0), (match.group("half") or "").lower()[:1]
    if minute > 59 or hour > (12 if half else 23) or (half and hour == 0):
        return []
    if half:
        hour = hour % 12 + (12 if half == "p" else 0)
    delta = hour * 60 + minute - start_minutes
    delta += 1440 if delta < -720 else (-1440 if delta > 720 else 0)
    return [(delta, None, "clock time (relative to the stated start)", match.group().strip(" *"))]


def title_offset(title: str) -> int | None:
    """The planned start a heading states (T-24h, Day -1, Week 2, (0-2 hours)); None if it states none.

    "A week before the freeze" is relative to something other than T-0, so it is not a start.
    """
    times = [t for t in _times(_plain(_clean(title)), heading=True) if t[2] != "N units before/after"]
    return times[0][0] if times else None


def _t_minutes(match) -> tuple[int, str]:
    if match.group("sign") is None:
        return 0, "T-0"
    sign_text = match.group("sign").strip(" \t-").lower() or match.group("sign").strip()
    sign = 1 if sign_text in ("+", "plus") else -1
    amount = match.group("amount") + (match.group("unit") or "")
    minutes = 0.0
    units = []
    for number, unit in V.T_PART_RE.findall(amount):
        key = (unit or "m")[0].lower()
        units.append(unit or "")
        minutes += float(number) * V.UNIT_MINUTES[key]
    notation = "T-minus N" if sign_text in ("minus", "plus") else "T±N"
    if not any(units) and minutes:
        notation += " (no unit: minutes)"
    return round(sign * minutes), notation


# --- contacts ----------------------------------------------------------------------------------------------------


_CONTACT_HINTS = ("escalat", "reporting chain", "fallback", "unavailable", "emergency", "contact", "in case", "on call",
                  "on-call", "oncall", "pager", "opsgenie")  # fmt: skip


def _contact(line: _Line, plain: str, context: str) -> dict | None:
    if line.kind == "cell":
        return None  # read with its whole row (see _row)
    in_section = _says(V.CONTACT_SECTION_RE, line.heading) or _says(V.CONTACT_SECTION_RE, line.label)
    lower = plain.lower()
    if not in_section and not any(hint in lower for hint in _CONTACT_HINTS):
        return None
    channel = V.CHANNEL_RE.search(plain) if in_section else None
    how = None
    if in_section and line.first and line.kind in ("item", "entry", "cell") and channel:
        how = "contact list"
    elif in_section and line.first and line.kind in ("entry", "item") and V.WINDOW_RE.search(plain) and line.label == "":
        how = "escalation level"
    elif line.kind != "heading" and len(plain.split()) > 3 and V.CONTACT_LINE_RE.search(plain):
        how = "escalation wording"
    elif line.kind not in ("item", "heading") and V.ON_CALL_RE.search(plain):
        how = "on-call coverage"
    if how is None:
        return None
    labelled = _BOLD_LABEL_RE.match(line.text)
    name = _role_name(labelled.group("label")) if labelled else ""
    if not name and in_section:  # "On-call engineer (0-15 min) via PagerDuty"
        name = _role_name(re.split(r"\(|\s[-–—]\s|\s+via\s|:", plain)[0])
    level = line.ordinal if in_section else None
    level_match = V.LEVEL_RE.search(line.text)
    if level_match:
        level = int(level_match.group("level") or level_match.group("ordinal"))
    window = V.WINDOW_RE.search(plain)
    entry = {"line": line.number, "name": name, "role": "", "channel": "", "level": level, "text": plain, "how": how}
    channel = channel or V.CHANNEL_RE.search(plain)
    if channel:
        entry["channel"] = channel.group().strip()
    if window and how in ("escalation level", "contact list"):
        if window.group("a"):
            per = 60 if window.group("unit")[0].lower() == "h" else 1
            entry["window_minutes"] = [int(window.group("a")) * per, int(window.group("b")) * per]
    role = _first_role(plain) or (name if _looks_like_role(name) else "")
    if role:
        entry["role"] = role
    return entry


# --- thresholds ----------------------------------------------------------------------------------------------------


_TRAILING_VERB_RE = re.compile(r"\s+(?:stays?|remains?|is|are|must\s+(?:stay|be)|should\s+(?:stay|be)|kept|keeps?)$",
                               re.IGNORECASE)  # fmt: skip
_METRIC_BEFORE_RE = re.compile(r"(?P<metric>[A-Za-z][\w /().'-]{1,60}?)\s*$")


_OPERATOR_HINT_RE = re.compile(r"[<>≤≥]|\b(?:under|below|above|over|than|least|most|exceed)\b", re.IGNORECASE)


def _thresholds(plain: str) -> list[dict]:
    if not any(char in plain for char in "<>≤≥") and not (
        any(word in plain for word in ("nder", "elow", "bove", "ver", "than", "east", "ost", "xceed"))
        and _OPERATOR_HINT_RE.search(plain)
    ):
        return []
    results = []
    for match in V.OP_VALUE_RE.finditer(plain):
        written = _METRIC_BEFORE_RE.search(plain, max(0, match.start() - 64), match.start())
        if written is None:
            continue
        metric = written.group("metric")
        inside = metric.rsplit("(", 1)[1] if metric.count("(") > metric.count(")") else ""
        if re.search(r"[A-Za-z]", inside):  # "Server resources (CPU < 70%": the metric is inside
            metric = inside
        metric = _TRAILING_VERB_RE.sub("", metric.strip(" -–—:*("))
        metric = re.split(r"[:;,]|\bif\b|\bwhen\b", metric)[-1].strip()
        metric = re.sub(r"^(?:or|and|nor|but)\s+", "", metric)  # "… < 99.5% or API error rate > 2%": the second metric
        if not V.METRIC_WORDS_RE.search(metric) or len(metric.split()) > 7:
            continue
        results.append(_threshold(metric, match, plain))
    if not results:
        match = V.THRESHOLD_FIRST_RE.search(plain)
        if match and V.METRIC_WORDS_RE.search(match.group("metric")):
            results.append(_threshold(match.group("metric").strip(), match, plain))
    return results


def _threshold(metric: str, match, plain: str) -> dict:
    op = V.OPERATORS[" ".join(match.group("op").lower().split())]
    value = float(match.group("value").replace(",", "."))
    unit = (match.group("unit") or "").lower()
    unit = {"milliseconds": "ms", "millisecond": "ms", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
            "sigma": "σ", "minutes": "min", "minute": "min", "mins": "min", "m": "min"}.get(unit, unit)  # fmt: skip
    rest = plain[match.end() :]
    relative = re.match(r"\s*(?:of\s+)?baseline\b", rest)
    entry = {"metric": metric, "op": op, "value": int(value) if value.is_integer() else value, "unit": unit,
             "text": plain}  # fmt: skip
    if relative or (unit == "x" and "baseline" in rest[:20].lower()):
        entry["relative_to"] = "baseline"
    sustain = V.SUSTAIN_RE.search(rest)
    if sustain:
        if sustain.group("n"):
            per = {"h": 60, "s": 1 / 60}.get(sustain.group("unit")[0].lower(), 1)
            entry["for_minutes"] = round(int(sustain.group("n")) * per, 2)
        else:
            entry["sustained"] = True
    return entry


# --- rollout stages -------------------------------------------------------------------------------------------------


def _stage(line: _Line, plain: str) -> float | None:
    if "%" not in plain or not line.first or (line.kind == "paragraph" and not _BOLD_LABEL_RE.match(line.text)):
        return None
    percent = V.PERCENT_RE.search(plain)
    if percent is None or not V.STAGE_WORDS_RE.search(plain):
        return None
    before = plain[: percent.start()].rstrip()
    if re.search(r"(?:<|>|≤|≥|=|under|below|above|over|than|least|most)$", before, re.IGNORECASE):
        return None  # a threshold, not a stage
    if (
        line.kind not in ("heading", "cell")
        and not _BOLD_LABEL_RE.match(line.text)
        and not re.search(r"\b(?:stage|phase|wave|canary|cohort)\b", plain, re.IGNORECASE)
    ):
        return None
    value = float(percent.group("percent"))
    if value > 100:
        return None
    return int(value) if value.is_integer() else value


def _inline_hold(text: str) -> int | None:
    """The hold a stage's own line states ("— hold 15 min", "for 30 minutes"), or None."""
    match = V.INLINE_HOLD_RE.search(text)
    return _hold_minutes(text[match.end() : match.end() + 24]) if match else None


def _hold_minutes(value: str) -> int | None:
    match = re.search(r"(\d+(?:\.\d+)?)\s*(?:-|–|to)?\s*(?:\d+(?:\.\d+)?)?\s*(weeks?|days?|hours?|hrs?|h|minutes?|mins?|m)\b",
                      value, re.IGNORECASE)  # fmt: skip
    if not match:
        return None
    unit = match.group(2)[0].lower()
    return round(float(match.group(1)) * (10080 if unit == "w" else V.UNIT_MINUTES[unit]))


def _nginx_stages(code: list[tuple[int, str, str]]) -> list[dict]:
    """An nginx upstream with weights: the canary's share is its weight over the total."""
    stages = []
    for line, _info, text in code:
        if "upstream" not in text:
            continue
        servers = [(m.group("server"), int(m.group("weight")), m.start()) for m in V.NGINX_WEIGHT_RE.finditer(text)]
        total = sum(weight for _s, weight, _p in servers)
        if len(servers) < 2 or not total:
            continue
        server, weight, position = min(servers, key=lambda s: s[1])
        percent = round(100 * weight / total, 2)
        stages.append(
            {
                "line": line + text.count("\n", 0, position) + 1,
                "percent": int(percent) if percent.is_integer() else percent,
                "hold_minutes": None,
                "text": f"nginx upstream weight={weight} of {total} ({server})",
            }
        )
    return stages


# --- fields ----------------------------------------------------------------------------------------------------------


def _placeholder_fields(text: str) -> list[str]:
    """ "[Name]", "[Phone]", "<owner>", "Release Lead: @USERNAME", "[the PR](#)": each a field to fill in."""
    if not any(mark in text for mark in "[<@") and not any(token in text for token in ("(at)", "TB", "XXX")):
        return []
    masked = _CODE_SPAN_RE.sub(" ", text)
    labels = []
    for match in V.PLACEHOLDER_RE.finditer(masked):
        content = match.group("bracket") or match.group("angle") or ""
        words = set(re.split(r"[ _/-]+", content.lower()))
        if words & V.PLACEHOLDER_WORDS or content.isupper():
            labels.append(content)
    token = V.PLACEHOLDER_TOKEN_RE.search(masked)
    if token:
        labelled = _BOLD_LABEL_RE.match(masked)
        labels.append(_role_name(labelled.group("label")) if labelled else token.group())
    labels += [_plain(link.group()) for link in V.EMPTY_LINK_RE.finditer(masked)]
    return labels


def _empty_value(line: _Line, following: list[_Line]) -> str | None:
    """ "- [x] Booked the room for the Launch Control Room:" with nothing after it and nothing under it."""
    if line.kind != "item" or not line.text.endswith(":"):
        return None
    if following and following[0].kind in ("item", "entry") and following[0].depth > line.depth:
        return None  # a lead-in for the lines under it
    return _role_name(re.split(r"\bfor\b|:", line.text)[-2]) or None


# --- roles -------------------------------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[A-Za-z0-9][\w/&.'-]*")


def _role_key(name: str) -> str:
    words = [w.lower().rstrip("s") if len(w) > 3 else w.lower() for w in _WORD_RE.findall(name)]
    kept = [w for w in words if w not in V.ROLE_GENERIC and w.rstrip("s") not in V.ROLE_GENERIC]
    return " ".join(kept or words)


def _looks_like_role(name: str) -> bool:
    words = name.split()
    if not words or len(words) > 5 or "[" in name or "<" in name:
        return False
    last = words[-1].lower().strip(".,;:")
    if last in V.ROLE_ALONE:
        return True
    if "of" in words[1:-1]:  # "Director of Engineering", "Head of Platform"
        before = words[words.index("of") - 1].lower()
        return before in V.ROLE_HEADS or before in {"head", "vp", "chief"}
    return last in V.ROLE_HEADS and len(words) >= 2


def _role_phrases(text: str, *, at: int = 0, alone: bool = False) -> list[str]:
    """Role names ending in a role head word; ``alone`` also takes a bare functional name ("QA")."""
    matches = list(_WORD_RE.finditer(text, at))
    words = [m.group() for m in matches]
    found = []
    for index, word in enumerate(words):
        head = word.lower().strip(".,;:'")
        if head not in V.ROLE_HEADS:
            continue
        if (
            index + 1 < len(words)
            and words[index + 1].lower().strip(".,;:") in V.ROLE_HEADS
            and not text[matches[index].end() : matches[index + 1].start()].strip()
        ):
            continue  # the role goes on: "Release Team Lead"
        start = index
        while start > 0 and index - start < 3:
            previous = words[start - 1].lower()
            gap = text[matches[start - 1].end() : matches[start].start()]
            if gap.strip(" /") or previous in V.ROLE_STOP or previous in V.VERBS or previous.endswith("ed"):
                break
            if previous[0].isdigit() and not previous.startswith("24/7"):
                break
            start -= 1
        phrase = words[start : index + 1]
        if len(phrase) == 1 and not (alone and head in V.ROLE_ALONE):
            continue
        if len(phrase) == 1 and head in V.ROLE_NEEDS_MODIFIER:
            continue
        name = text[matches[start].start() : matches[index].end()].strip(".,;:)")
        if name.lower().endswith("'s") or "(" in name or ")" in name:
            continue
        found.append(name)
    return found


def _names_a_person(name: str) -> bool:
    """ "QA Lead" rather than "QA team" names the merged role: someone holds it."""
    last = name.rsplit(maxsplit=1)[-1].lower()
    return last not in V.ROLE_GENERIC or last in {"lead", "engineer"}


def _first_role(plain: str) -> str:
    for match in V.ROLE_INTRO_RE.finditer(plain):
        phrases = _role_phrases(plain[match.end() :][:60], alone=True)
        if phrases and plain[match.end() :].lower().startswith(phrases[0].lower()):
            return phrases[0]
    return ""


def _collect_roles(line: _Line, plain: str, roles: _RoleCatalogue) -> None:
    if not V.ROLE_HINT_RE.search(plain):
        return
    text = V.PLACEHOLDER_RE.sub(" ", plain)
    labelled = _BOLD_LABEL_RE.match(line.text)
    if labelled and V.ROLE_LABEL_RE.match(labelled.group("label").strip()):
        for written in re.split(r",|;|&|\band\b|/", _plain(labelled.group("value"))):
            part = re.sub(r"\([^)]*\)|\s+(?:via|by|through|on|in|at|for)\s.*$", "", written).strip(" .")
            if part and (_looks_like_role(part) or part.lower() in V.ROLE_ALONE):
                roles.add(part, line.number, strong=True)
    if line.kind == "heading":
        for inner in re.findall(r"\(([^()]{2,40})\)\s*$", plain):
            if inner.lower() in V.ROLE_ALONE or _looks_like_role(inner):
                roles.add(inner, line.number, strong=True)
        return
    if not line.first:
        return
    # The subject of a step: "Branch Manager does …", "In-person technical team members gather …".
    lead = re.match(r"(?:[\w'-]+\s+){0,2}?", text)
    subject = _role_phrases(text[:80])
    if subject:
        start = text.lower().find(subject[0].lower())
        before = text[:start].split()
        if start >= 0 and all(word.lower().strip(",") in V.ROLE_STOP for word in before) and lead is not None:
            roles.add(subject[0], line.number, strong=True)
    # A role's title in Title Case anywhere: "assist the Release Signal Lead and Enhancements Lead".
    for phrase in _role_phrases(text):
        words = phrase.split()
        if len(words) >= 2 and all(word[0].isupper() or not word[0].isalpha() for word in words):
            roles.add(phrase, line.number, strong=False)
    for match in V.ROLE_INTRO_RE.finditer(text):
        phrases = _role_phrases(text[match.end() :][:60], alone=True)
        if phrases and text[match.end() :].lower().startswith(phrases[0].lower()):
            roles.add(phrases[0], line.number, strong=False)


class _RoleCatalogue:
    """Role names merged by their key ("QA", "QA team" and "QA Lead" are one role, named as first written)."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}
        self.lines: dict[str, list[int]] = {}
        self.strong: set[str] = set()
        self.counts: dict[str, int] = {}

    def add(self, name: str, line: int, *, strong: bool) -> None:
        name = re.split(r"\.\s", " ".join(name.split()))[0].strip(" .,;:-")
        if not name or len(name) > 80 or "[" in name or name.lower() in {"all", "everyone", "team", "tbd", "n/a"}:
            return
        key = _role_key(name)
        if not key:
            return
        variants = self.names.setdefault(key, [])
        if name not in variants:
            variants.append(name)
        self.counts[name] = self.counts.get(name, 0) + 1
        self.lines.setdefault(key, []).append(line)
        if strong:
            self.strong.add(key)

    def finish(self) -> tuple[list[dict], list[dict]]:
        roles, merges = [], []
        for key, variants in self.names.items():
            lines = sorted(set(self.lines[key]) - {0})
            # A role read only from the subject of a sentence needs to be written twice to count.
            if key not in self.strong and len(self.lines[key]) < 2:
                continue
            name = max(
                variants,
                key=lambda variant: (
                    _names_a_person(variant),
                    variant[:1].isupper(),
                    self.counts[variant],
                    -variants.index(variant),
                ),
            )
            roles.append({"name": name, "lines": lines, "variants": variants})
            if len(variants) > 1:
                merges.append({"name": name, "merged": [v for v in variants if v != name]})
        return roles, merges


_KIND_NAMES = {
    "gates": "go/no-go gates and decision points",
    "approvals": "required approvals",
    "timeline": "relative times",
    "contacts": "contacts and escalation levels",
    "thresholds": "metric thresholds",
    "rollout_stages": "rollout stages",
    "fields": "fields to fill in",
}


def understood_lines(found: dict) -> list[str]:
    """What was understood, in words: one line per kind, then the role merges and the repairs."""
    out = []
    for kind, name in _KIND_NAMES.items():
        entries = found.get(kind) or []
        if not entries:
            continue
        if kind == "timeline":
            notations = sorted({entry.get("notation") or "" for entry in entries} - {""})
            detail = f" (notation read: {', '.join(notations)})" if notations else ""
        elif kind == "approvals":
            roles = sorted({entry["role"] for entry in entries if entry.get("role")})
            detail = f" (by {', '.join(roles)})" if roles else ""
        else:
            detail = ""
        lines = ", ".join(str(entry["line"]) for entry in entries[:12]) + (", …" if len(entries) > 12 else "")
        out.append(f"{len(entries)} {name}{detail}: lines {lines}")
    for merge in found.get("role_merges") or []:
        out.append(f"roles merged: {', '.join(merge['merged'])} → {merge['name']}")
    if found.get("repairs"):
        out.append(
            f"mojibake repaired on {len(found['repairs'])} line(s): " + ", ".join(str(r["line"]) for r in found["repairs"][:12])
        )
    return out
