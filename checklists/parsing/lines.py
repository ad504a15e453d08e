"""One line's checklist meaning: boxes, fill-in blanks, labels, choices and gates."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

_GLYPHS = "☐☑☒□"


_CHECKED_GLYPHS = "☑☒"


_GLYPH_RE = re.compile(f"[{_GLYPHS}]")


_BRACKET_BOX_RE = re.compile(r"\[([ xX])\](?=[ \t]|$)")


_BLANK_RE = re.compile(r"(?<!\w)_{3,}(?!\w)")


_ESCAPE_RE = re.compile(r"\\[!-/:-@\[-`{-~]")


_BACKTICKS_RE = re.compile(r"`+")


_MASKABLE_RE = re.compile(r"[\\`]|https?:|<[A-Za-z]")


_URL_RE = re.compile(r"<[A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*>|https?://\S+")


_ITEM_NUMBER_RE = re.compile(r"\*\*(?P<number>[A-Za-z]?\d+(?:\.\d+)*)\.?\*\*(?:\s+|$)")


_LABELLED_RE = re.compile(r"\*{0,2}(?P<label>[^*:]{1,60}?)\*{0,2}[ \t]*:[ \t]*\*{0,2}[ \t]*(?P<value>.*)")


_TRAILING_PARENS_RE = re.compile(r"\s+(\([^()]*\))$")  # "NO-GO (postpone)", not "[x](http://link)"


_SENTENCE_END = ".!?"


_SENTENCE_START_RE = re.compile(r"\s+[*_]*[A-Z]")


@dataclass
class _Box:
    start: int
    end: int
    checked: bool
    glyph: bool


@dataclass
class _LineFacts:
    """What one line of inline Markdown holds."""

    item: tuple[bool, str | None, str] | None = None  # (checked, number, text after the box and number)
    fields: list[tuple[str, str]] = field(default_factory=list)  # (label, hint)
    choice: tuple[str, list[str], list[str], list[str]] | None = None  # label, options, selected, notes
    context: str = ""  # text before the labels ("If failed, stop deployment. Error: ____")
    labelled: tuple[str, str] | None = None  # ("responsible", "DevOps Engineer") for a plain "Label: value" line


def _mask(text: str) -> str:
    """Hide escapes, code spans and URLs so underscores or brackets inside them are not markers.

    Masked characters become NUL, which never occurs in decoded input.
    """
    if not _MASKABLE_RE.search(text):  # the common case, and the hot path on large files
        return text
    masked = list(text)

    def hide(start: int, end: int) -> None:
        masked[start:end] = "\x00" * (end - start)

    for match in _ESCAPE_RE.finditer(text):
        hide(*match.span())
    runs = [match.span() for match in _BACKTICKS_RE.finditer("".join(masked))]
    # A code span closes at the next backtick run of the same length (CommonMark);
    # precomputing "next run of this length" keeps this linear on hostile lines.
    following: list[int | None] = [None] * len(runs)
    last_of_length: dict[int, int] = {}
    for index in range(len(runs) - 1, -1, -1):
        length = runs[index][1] - runs[index][0]
        following[index] = last_of_length.get(length)
        last_of_length[length] = index
    index = 0
    while index < len(runs):
        closing = following[index]
        if closing is None:
            index += 1
            continue
        hide(runs[index][0], runs[closing][1])
        index = closing + 1
    for match in _URL_RE.finditer(text):
        hide(*match.span())
    return "".join(masked)


def _find_boxes(masked: str) -> list[_Box]:
    boxes = [_Box(m.start(), m.end(), m.group() in _CHECKED_GLYPHS, glyph=True) for m in _GLYPH_RE.finditer(masked)]
    boxes += [_Box(m.start(), m.end(), m.group(1) != " ", glyph=False) for m in _BRACKET_BOX_RE.finditer(masked)]
    return sorted(boxes, key=lambda box: box.start)


def _analyze_line(text: str, fallback_label: Callable[[], str]) -> _LineFacts:
    """Find the item box, blanks and choice boxes on one line of inline Markdown.

    ``fallback_label`` names a blank that has no label of its own; it is only
    called when such a blank exists. On an item line such a blank is just "Blank":
    the item's text says what it is for, and the item is read again, with other
    context, whenever its runbook is rendered and parsed.
    """
    facts = _LineFacts()
    body, masked = text, _mask(text)
    leading = _BRACKET_BOX_RE.match(masked)
    if leading:  # the task-list rule: "[ ] text" at the very start
        facts.item, body = _item(leading.group(1) != " ", text[leading.end() :])
        masked = _mask(body)
    boxes = _find_boxes(masked)
    glyphs = sum(box.glyph for box in boxes)
    if facts.item is None and glyphs == 1 and len(boxes) == 1 and not _clean_label(body[: boxes[0].start]):
        # "☐ Task" (Word-style checklists): one box and nothing before it.
        facts.item, body = _item(boxes[0].checked, body[boxes[0].end :])
        masked, boxes = _mask(body), []
    elif not glyphs and len(boxes) < 2:  # a lone "[ ]" mid-sentence is not a choice
        boxes = []
    blanks = [match.span() for match in _BLANK_RE.finditer(masked)]
    if boxes or blanks:
        name_blank = fallback_label if facts.item is None else lambda: "Blank"
        facts.fields, facts.choice, facts.context = _fill_ins(body, boxes, blanks, name_blank)
    elif facts.item is None:
        facts.labelled = _labelled(text)
    return facts


def _item(checked: bool, rest: str) -> tuple[tuple[bool, str | None, str], str]:
    """The item facts for the text after a box, and the text left to look for fill-ins in.

    "**1.1** Do x" gives number "1.1" and text "Do x"; the text is stripped as it will
    be when rendered after the box.
    """
    text = rest.strip()
    match = _ITEM_NUMBER_RE.match(text)
    number = match.group("number") if match else None
    text = text[match.end() :] if match else text
    return (checked, number, text), text


def _labelled(text: str) -> tuple[str, str] | None:
    """ "**Responsible:** DevOps Engineer" -> ("responsible", "DevOps Engineer")."""
    match = _LABELLED_RE.fullmatch(text)
    if not match:
        return None
    return " ".join(match.group("label").lower().split()), _trim(match.group("value"), "*")


def _fill_ins(
    body: str, boxes: list[_Box], blanks: list[tuple[int, int]], fallback_label: Callable[[], str]
) -> tuple[list[tuple[str, str]], tuple[str, list[str], list[str], list[str]] | None, str]:
    """Split a line into its fields, its (single) choice and the text around their labels.

    See the module doc for the label rules.
    """
    events: list[tuple[int, int, _Box | None]] = sorted([(b.start, b.end, b) for b in boxes] + [(s, e, None) for s, e in blanks],
                                                        key=lambda event: event[0])  # fmt: skip
    fields: list[tuple[str, str]] = []
    line_label: str | None = None
    choice_label: str | None = None
    options: list[str] = []
    selected: list[str] = []
    notes: list[str] = []
    contexts: list[str] = []
    for index, (start, end, box) in enumerate(events):
        before = body[events[index - 1][1] if index else 0 : start]
        is_last = index + 1 == len(events)
        after = body[end : len(body) if is_last else events[index + 1][0]]
        next_is_blank = not is_last and events[index + 1][2] is None
        previous_is_box = index > 0 and events[index - 1][2] is not None
        if box is not None:
            if choice_label is None:
                context, choice_label = _split_label(before)
                contexts.append(context)
                choice_label = choice_label or line_label or ""
                line_label = line_label or choice_label or None
            # "☐ Yes Time: ____": the option is the first word, the rest labels the blank.
            option, note = _split_option(_first_word(after)[0] if next_is_blank else after)
            options.append(option)
            notes.append(note)
            if box.checked:
                selected.append(option)
            continue
        if previous_is_box:
            own = _clean_label(_first_word(before)[1]) or options[-1]
        else:
            context, own = _split_label(before)
            contexts.append(context)
        if line_label is None:
            line_label = own or fallback_label()
            label = line_label
        else:
            label = f"{line_label} — {own or len(fields) + 1}"
        hint = after.strip() if is_last else ""
        fields.append((label, hint if any(char.isalnum() for char in hint) else ""))  # not a lone ")"
    choice = (choice_label or "", options, selected, notes) if options else None
    return fields, choice, " ".join(context for context in contexts if context)


def _first_word(text: str) -> tuple[str, str]:
    first, *rest = text.split(None, 1) or [""]
    return first, rest[0] if rest else ""


def _split_option(text: str) -> tuple[str, str]:
    """ "NO-GO (postpone)" -> ("NO-GO", "(postpone)")."""
    option = _trim(text, "*_:")
    notes: list[str] = []
    while match := _TRAILING_PARENS_RE.search(option):
        notes.insert(0, match.group(1))
        option = _trim(option[: match.start()], "*_:")
    return option, " ".join(notes)


def _split_label(text: str) -> tuple[str, str]:
    """(context, label): the label is the text after the last colon, open parenthesis or sentence end.

    "**Rollback Point:** Backup location documented: " -> ("**Rollback Point:**",
    "Backup location documented"). The label is idempotent under this function, and
    ``f"**{label}:** "`` gives it back, which is what makes rendered fields parse to
    the same labels.
    """
    body = _trim(text, "*_:", left=False)
    cut = depth = 0
    for index in range(len(body) - 1, -1, -1):
        char = body[index]
        if char == ")":
            depth += 1
        elif char == "(" and depth:
            depth -= 1
        elif char == "(" or (
            depth == 0 and (char == ":" or (char in _SENTENCE_END and _SENTENCE_START_RE.match(body, index + 1)))
        ):
            cut = index + 1
            break
    tail = body[cut:]
    label = _trim(tail, "*_", right=False)
    context = text[: cut + len(tail) - len(label)].strip()
    return context if any(char.isalnum() for char in context) else "", label


def _clean_label(text: str) -> str:
    return _split_label(text)[1]


def _clean_role(text: str) -> str:
    """ "Product Owner (meeting facilitator)" -> "Product Owner"."""
    role = _trim(text, "*_")
    while match := _TRAILING_PARENS_RE.search(role):
        role = _trim(role[: match.start()], "*_")
    return role


def _trim(text: str, marks: str, *, left: bool = True, right: bool = True) -> str:
    """Strip whitespace (as str.strip() sees it, like markdown-it) and the given Markdown marks."""
    chars = f"[\\s{re.escape(marks)}]+"
    if left:
        text = re.sub(f"^{chars}", "", text)
    return re.sub(f"{chars}$", "", text) if right else text


def _is_gate(options: list[str]) -> bool:
    keys = {re.sub(r"[\s_–—]+", "-", option.upper()) for option in options}
    return {"GO", "NO-GO"} <= keys or {"GO-LIVE", "ROLLBACK"} <= keys
