"""The words and patterns the importer reads meaning from, one rule per name.

Every rule is about how teams write runbooks in general (vocabulary and shape), never
about one file's sentence. ``checklists.recognition`` applies them to the lines of the
markdown-it token stream; keep the patterns cheap: they run on every line of a 1 MB file.
"""

from __future__ import annotations

import re

# --- gates and decision points -----------------------------------------------------------------

# "Go / No-Go", "GO/NOGO", "go-no-go": the classic decision, wherever it is written.
GO_NO_GO_RE = re.compile(r"\bgo\s*(?:/|-|–|or|\s)\s*no[\s-]*go\b", re.IGNORECASE)
# A go/no-go *meeting's* logistics (attendees, the call, the room) are not the decision itself.
GO_NO_GO_LOGISTICS_RE = re.compile(
    r"\bgo\s*(?:/|-|–|or|\s)\s*no[\s-]*go\b[\s+&]*(?:attendees?|meeting|skype|call|invites?|invitations?|room|"
    r"participants?|\+\s*check)",
    re.IGNORECASE,
)
# Other ways a runbook names a decision point.
DECISION_RE = re.compile(
    r"\bdecision\s*(?:point)?\s*[:*]"  # "Decision: proceed or rollback", "**Decision point**:"
    r"|\bdecides?\s+(?:whether|if)\b"  # "Chris decides whether …"
    r"|\b(?:makes?|take|takes|made)\s+the\s+(?:final\s+)?decision\b"  # "makes the decision to launch"
    r"|\bhold\s+point\b"  # "HOLD POINT - …"
    r"|\bproceed\s+(?:only\s+)?(?:if|when|once)\b"  # "Proceed if metrics acceptable"
    r"|\b(?:proceed|continue|go\s+ahead)\s+or\s+(?:roll\s*back|abort|stop|hold)\b"
    r"|\b(?:expand|promote|advance)\s+or\s+(?:hold|roll\s*back|pause)\b"
    r"|\bgood\s+to\s+(?:launch|go|proceed|deploy|release|ship)\b"  # "confirms … we are good to launch"
    r"|\bwait\s+for\s+(?:the\s+)?(?:clearance|approval|go-?ahead|green\s+light|sign-?off|authori[sz]ation|"
    r"public\s+disclosure|disclosure)\b",
    re.IGNORECASE,
)
# Cheap test run first on every line: a line without one of these words holds no gate.
GATE_HINT_RE = re.compile(
    r"\b(?:go|decision|decide|hold|proceed|good\s+to|wait|criteria|threshold|trigger|condition|if|when|in\s+case|"
    r"roll\s*back|rollback|abort|expand|promote|advance|continue)",
    re.IGNORECASE,
)
# "Rollback decision", "Launch decision": a decision named as a title (a heading, a label, the start of a line);
# inside a sentence ("Announce the rollback decision") it is a task about one.
TITLED_DECISION_RE = re.compile(r"^(?:final\s+)?(?:launch|release|deploy(?:ment)?|rollback|roll-back|go-live)\s+decision\b",
                                re.IGNORECASE)  # fmt: skip
# "If any of the crisis criteria are met …": a trigger that decides between plans.
CRITERIA_TRIGGER_RE = re.compile(
    r"\bif\b[^.]{0,80}\b(?:criteria|thresholds?|triggers?|conditions?)\b[^.]{0,30}\b(?:are|is)\s+"
    r"(?:met|exceeded|breached|hit|reached)\b",
    re.IGNORECASE,
)
# A conditional branch with steps of its own: "If reported issues require a respin:" over sub-steps.
BRANCH_RE = re.compile(r"^(?:if|when|in case)\b.{3,}:$", re.IGNORECASE)
# Criteria that decide a stage or a gate (kept as the gate's criteria).
CRITERIA_LABEL_RE = re.compile(
    r"^(?:entry|exit|success|promotion|acceptance|go|go-live|rollback|abort|halt|release)\s+criteria$", re.IGNORECASE
)
PROCEED_IF_RE = re.compile(r"\bproceed\s+(?:only\s+)?(?:if|when|once)\s+(?P<criteria>.+)", re.IGNORECASE)
# A list of reasons to roll back is a decision the war room must put to people.
ROLLBACK_LIST_RE = re.compile(
    r"\b(?:roll\s*back|rollback|abort|no-go)\s+(?:decision|criteria|triggers?|conditions?|if)\b|\bwhen\s+to\s+roll\s*back\b",
    re.IGNORECASE,
)

# --- approvals and sign-offs ---------------------------------------------------------------------

# Headings or lead-ins that make the lines under them required approvals.
APPROVAL_SECTION_RE = re.compile(r"\b(?:approvals?|sign[\s-]?offs?|signatures?|authori[sz]ations?)\b", re.IGNORECASE)
# An approval written on one line: "QA team sign-off", "Product owner approval", "gives final approval",
# "Release Team Lead approving merge", "**Radiology Lead**: Approved for launch", "has agreed to abide …".
APPROVAL_LINE_RE = re.compile(
    r"\b(?:sign[\s-]?off|signs?\s+off|signed\s+off|approvals?|approv(?:e|es|ing)|approved\s+(?:for|by)|authori[sz]es?|"
    r"clearance\s+from|has\s+agreed\s+to|agrees?\s+to\s+abide|review\s+process|confirm\s+with\s+\S+\s+that)\b",
    re.IGNORECASE,
)
# Words that use "approve" for something that is not a sign-off ("auto-approved", "approval rate").
# "All approvals received" sums the approvals up; it is not one more.
NOT_APPROVAL_RE = re.compile(
    r"\bapproval\s+(?:rate|denial|queue|workflow|api)\b|\bauto-?approv|\ball\s+(?:required\s+)?(?:approvals|sign-?offs)\b",
    re.IGNORECASE,
)
# A sign-off line with blanks: "Engineering Manager: ____ Date: ____" (the role is the first label, and the
# date or signature has a blank of its own).
SIGN_OFF_BLANKS_RE = re.compile(
    r"^(?P<role>[A-Za-z][\w /&().-]{1,60}?)\s*:?\s*_{3,}.*\b(?:date|signature|signed|initials)\s*:?\s*_{3,}", re.IGNORECASE
)
# A role's name with a blank after it, under a sign-off heading: "QA Lead: ______".
BLANK_AFTER_NAME_RE = re.compile(r"^(?P<role>[A-Za-z][\w /&().-]{1,60}?)\s*:?\s*_{3,}")
# Labels that say "approval" rather than who gives it.
APPROVAL_LABEL_RE = re.compile(r"^(?:final\s+)?(?:approved\s+by|approvals?|sign-?offs?|signatures?|signed|approver)$",
                               re.IGNORECASE)  # fmt: skip
# The person or role an approval is asked from: "clearance from X", "approved by X", "confirm with X".
APPROVER_AFTER_RE = re.compile(r"\b(?:from|by|with)\s+(?:the\s+|our\s+)?(?P<who>[A-Z][\w-]*(?:\s+[A-Z][\w-]*){0,3})", re.UNICODE)

# --- relative times ---------------------------------------------------------------------------

UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10080}
_UNIT = r"(?:weeks?|wks?|w|days?|d|hours?|hrs?|h|minutes?|mins?|m)"
_NUM = r"\d+(?:\.\d+)?"
# T-notation: "T-72 hours", "T-4h", "T+0", "T-minus 5 days", "T+30m", "T-2", "T+1h30m", "T+1d 4h".
T_NOTATION_RE = re.compile(
    rf"(?<![\w/])T\s*(?P<sign>[\s-]*minus\s+|[\s-]*plus\s+|[+\-−–])\s*(?P<amount>(?:{_NUM}\s*{_UNIT}\s*)*{_NUM})\s*(?P<unit>{_UNIT})?"
    rf"(?![\w]|\.\d)|(?<![\w/])T\s*[-−–]?\s*0(?![\w.%])",
    re.IGNORECASE,
)
# Cheap test run first on every line: a line without one of these holds no relative time.
TIME_HINT_RE = re.compile(
    r"\b(?:T\s*[-+−–0-9\s]|day|week|wk|sprint|D[-+−–]\d|before|after|prior|post|following|ahead|into|first|second|"
    r"third|fourth|fifth|sixth)|\(\s*~?\s*\d",
    re.IGNORECASE,
)
T_PART_RE = re.compile(rf"({_NUM})\s*({_UNIT})?", re.IGNORECASE)
# "Day -1", "Day 0", "Day 2-3", "Day 4+", "D-2", "D+1", "Week 1", "~Week 5 - 7", "week 12".
DAY_WEEK_RE = re.compile(
    r"(?<![\w-])(?P<unit>day|week|wk|sprint)\s*(?P<sign>[+\-−–]?)\s*(?P<n>\d{1,3})(?:\s*(?:-|–|to)\s*(?P<n2>\d{1,3}))?\+?(?![\w.%])"
    r"|(?<![\w-])(?P<dunit>D)(?P<dsign>[+\-−–])(?P<dn>\d{1,3})(?![\w.%])",
    re.IGNORECASE,
)
# "(1-3 Weeks)", "(0-2 hours)": a window in parentheses, in a heading or a label.
PAREN_WINDOW_RE = re.compile(
    rf"\(\s*~?\s*(?P<a>{_NUM})\s*(?:-|–|to)\s*(?P<b>{_NUM})\s*(?P<unit>weeks?|days?|hours?|hrs?|h|mins?|minutes?)\s*\)",
    re.IGNORECASE,
)
# "One week before the start", "2 days after launch", "one-hour post launch", "48 hours prior to".
NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "twelve": 12, "twenty-four": 24, "forty-eight": 48}  # fmt: skip
RELATIVE_PHRASE_RE = re.compile(
    rf"\b(?P<n>{_NUM}|{'|'.join(sorted(NUMBER_WORDS, key=len, reverse=True))})[\s-]*"
    r"(?P<unit>weeks?|days?|hours?|hrs?|minutes?|mins?)"
    r"\s+(?P<dir>before|after|prior\s+to|post|following|ahead\s+of|into)\b",
    re.IGNORECASE,
)
# "First week of the release cycle", "second day of the rollout".
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "last": None}
ORDINAL_PERIOD_RE = re.compile(r"\b(?P<ord>first|second|third|fourth|fifth|sixth)\s+(?P<unit>week|day)\s+of\b", re.IGNORECASE)
# A clock time leading a heading, label or item ("21:00 CET", "9:30 AM ET"): relative to the start time the
# runbook states, when it states one.
LEADING_CLOCK_RE = re.compile(r"^\W{0,3}(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<half>[AaPp]\.?[Mm]\.?)?(?:\s+[A-Z]{2,5})?(?!\w)")
# Ranges written between two T-offsets: "T-4h to T+28h", "T-1h – T+2h".
RANGE_JOIN_RE = re.compile(r"^\s*(?:to|until|till|through|-|–|—|\.\.)\s*$", re.IGNORECASE)

# --- roles ------------------------------------------------------------------------------------

# The last word of a role's name ("Release Team *Lead*", "security *officer*", "ops *team*").
ROLE_HEADS = {
    "lead", "leads", "manager", "managers", "owner", "owners", "engineer", "engineers", "team", "teams", "officer",
    "officers", "execs", "executives", "pms", "pm", "attendees", "chairs", "chair", "shadow", "shadows", "adviser",
    "advisor", "stakeholders", "administrator", "admin", "dba", "architect", "developers", "developer", "director",
    "commander", "coordinator", "approver", "approvers", "reviewer", "reviewers", "tester", "testers", "analyst",
    "on-call", "oncall", "sre", "sres", "qa", "devops", "ops", "support", "marketing", "security", "legal",
    "compliance", "cab", "noc", "secops", "champion", "facilitator", "scribe", "liaison", "sponsor", "specialist",
}  # fmt: skip
# Cheap test run first on every line: a line without one of these words names no role.
ROLE_HINT_RE = re.compile(
    r"\b(?:lead|manager|owner|engineer|team|officer|exec|pms?\b|attendee|chair|shadow|advis|stakeholder|admin|dba|"
    r"architect|developer|director|commander|coordinator|approver|reviewer|tester|analyst|on-?call|sre|qa|ops|support|"
    r"marketing|security|legal|compliance|cab|noc|champion|facilitator|scribe|liaison|sponsor|specialist|head|vp|chief)",
    re.IGNORECASE,
)
# Functional names that are a role by themselves when written where a role is expected.
ROLE_ALONE = {"qa", "sre", "dba", "devops", "ops", "support", "marketing", "security", "legal", "compliance", "cab",
              "noc", "secops", "stakeholders", "executives", "execs", "on-call", "oncall"}  # fmt: skip
# Heads that need a modifier to name someone ("team" alone is everybody).
ROLE_NEEDS_MODIFIER = {"team", "teams", "lead", "leads", "manager", "managers", "owner", "owners", "engineer",
                       "engineers", "officer", "officers", "pm", "pms", "attendees", "chairs", "chair", "shadow",
                       "shadows", "developer", "developers", "director", "admin", "administrator", "reviewer",
                       "reviewers", "approver", "approvers", "specialist", "champion"}  # fmt: skip
# Words that end a role's name going left: articles, quantifiers, prepositions, verbs of instruction.
ROLE_STOP = {
    "the", "a", "an", "all", "any", "every", "each", "our", "your", "their", "his", "her", "its", "this", "that", "these",
    "those", "with", "and", "or", "to", "of", "for", "in", "on", "by", "from", "at", "as", "is", "are", "be", "full",
    "whole", "entire", "new", "incoming", "outgoing", "previous", "other", "same", "broader", "appropriate", "in-person",
    "remote", "if", "then", "when", "whether", "via", "someone", "somebody", "notify", "notified", "contact", "ask",
    "remind", "reminded", "ping", "pinged", "inform", "assist", "consult", "page", "escalate", "tell", "meet", "pair",
    "request", "add", "added", "check", "checked", "confirm", "confirmed", "verify", "verified", "work", "help", "not",
    "no", "release's", "current", "next", "both", "only", "own", "one", "two", "more", "most", "some", "many",
    "about", "up", "out", "into", "over", "under", "after", "before", "during", "per", "has", "have", "had", "was",
    "were", "will", "should", "must", "can", "may", "do", "does", "did", "get", "got", "make", "made", "let",
}  # fmt: skip
# Imperative verbs that start checklist lines; capitalised there, they are not part of a role's name.
VERBS = {
    "poll", "create", "run", "collect", "update", "send", "verify", "check", "review", "deploy", "enable", "notify",
    "monitor", "schedule", "ensure", "make", "remind", "request", "pair", "meet", "bring", "begin", "follow", "identify",
    "publish", "remove", "help", "use", "test", "post", "open", "pin", "merge", "confirm", "decide", "get", "prepare",
    "address", "continue", "plan", "execute", "stop", "restore", "validate", "resume", "assess", "investigate",
    "capture", "complete", "start", "assign", "invite", "announce", "approve", "sign", "call", "join", "set", "add",
    "ask", "tell", "brief", "escalate", "page", "wait", "discuss", "contact", "coordinate", "inform", "keep", "tag",
}  # fmt: skip
# Words that name a team's function but are generic on their own and merge away: "QA", "QA team" and
# "QA Lead" are offered as one role.
ROLE_GENERIC = {"team", "teams", "lead", "leads", "group", "members", "member", "staff", "engineer", "engineers",
                "the", "people", "folks", "crew", "squad"}  # fmt: skip
# Labels whose value lists people in roles.
ROLE_LABEL_RE = re.compile(
    r"^(?:responsible|owner|owners|assignee|assigned\s+to|decision\s+maker|performed\s+by|users|attendees|participants|"
    r"required\s+(?:attendees|personnel|people|roles)|who|approvers?|approved\s+by|sign-?off\s+by|roles?|team|teams|"
    r"on-?call|escalation|contacts?|cc|notify|stakeholders|reviewers?|executor|driver|lead|dri)$",
    re.IGNORECASE,
)
# Verbs and prepositions after which a role's name follows: "assist the Enhancements Lead", "clearance from X".
ROLE_INTRO_RE = re.compile(
    r"\b(?:from|with|by|to|notify|notified|contact|assist|ask|ping|pinged|inform|remind(?:ed)?|consult|escalate\s+to|"
    r"page|is\s+to)\s+(?:the\s+|our\s+|your\s+|a\s+|someone\s+from\s+the\s+|someone\s+from\s+)?",
    re.IGNORECASE,
)
# "[Name]", "[Phone]", "<owner>", "TBD": fields to fill in, never a role.
PLACEHOLDER_RE = re.compile(
    r"\[(?P<bracket>(?:[A-Z][A-Za-z]*|[a-z]+)(?:[ _/-][A-Za-z]+){0,4})\](?!\()|<(?P<angle>[A-Za-z][\w -]{0,30})>(?![^<]*</)"
)
PLACEHOLDER_WORDS = {"name", "names", "phone", "email", "e-mail", "date", "time", "target", "version", "link", "url",
                     "tbd", "tba", "owner", "person", "number", "value", "here", "insert", "fill", "placeholder",
                     "username", "user", "team", "contact", "ticket", "id", "host", "service", "environment", "env",
                     "linked", "pr", "role", "channel"}  # fmt: skip
PLACEHOLDER_TOKEN_RE = re.compile(r"(?:\(at\)|@)(?:USERNAME|USER|NAME|HANDLE)\b|\b(?:TBD|TBA|XXX+)\b|\[\s*\]\(#?\)")
# A link that goes nowhere yet: "[Redirects PR](#)".
EMPTY_LINK_RE = re.compile(r"\[[^\]]+\]\(#?\)")

# --- contacts and escalation ----------------------------------------------------------------------

CONTACT_SECTION_RE = re.compile(
    r"\b(?:contacts?|escalation|escalations|on-?call|communications?|comms|emergency|pager|support\s+channels?|"
    r"who\s+to\s+call|points?\s+of\s+contact)\b",
    re.IGNORECASE,
)
# How someone is reached.
CHANNEL_RE = re.compile(
    r"(?P<channel>slack|e-?mail|phone|tel|mobile|sms|pager\s?duty|pagerduty|opsgenie|teams|zoom|status\s+page|"
    r"bridge|hotline|webex|mattermost|discord|irc)\b|(?P<handle>(?<![\w/])#[a-z][\w-]+|(?<![\w/])@[a-z][\w.-]+)|"
    r"(?P<number>\+?\d[\d ().-]{7,}\d)|(?P<address>[\w.+-]+@[\w-]+\.[\w.]+)",
    re.IGNORECASE,
)
# Written anywhere: an escalation path, a fallback, a reporting chain.
CONTACT_LINE_RE = re.compile(
    r"\bescalat(?:e|es|ion)\s+(?:to|path|level|chain|contacts?)\b|\breporting\s+chain\b|\bfallback\s+(?:paths?|contacts?)\b"
    r"|\bif\s+\w+(?:\s+\w+)?\s+(?:is\s+|are\s+)?unavailable\b|\bunavailable,?\s+(?:then\s+)?(?:contact|call|ask)?\b"
    r"|\bemergency\s+contacts?\b|\bcontact\s+(?:ASAP|immediately|urgently)\b|\bin\s+case\s+of\s+emergency\b",
    re.IGNORECASE,
)
# On-call coverage mentioned in prose (not a task about it).
ON_CALL_RE = re.compile(r"\bon[\s-]?call\s+(?:coverage|rotation|engineer|schedule)\b|\bpager\s?duty\b|\bopsgenie\b",
                        re.IGNORECASE)  # fmt: skip
# "(0-15 min)", "15-30 minutes", "after 30 min": an escalation level's window.
WINDOW_RE = re.compile(r"(?P<a>\d+)\s*(?:-|–|to)\s*(?P<b>\d+)\s*(?P<unit>min(?:ute)?s?|m|hours?|hrs?|h)\b"
                       r"|\bafter\s+(?P<c>\d+)\s*(?P<unit2>min(?:ute)?s?|m|hours?|hrs?|h)\b", re.IGNORECASE)  # fmt: skip
LEVEL_RE = re.compile(r"\b(?:level|tier|l)\s*(?P<level>\d)\b|^(?P<ordinal>\d)[.)]\s", re.IGNORECASE)

# --- metric thresholds ------------------------------------------------------------------------------

OPERATORS = {"<": "<", ">": ">", "<=": "<=", ">=": ">=", "≤": "<=", "≥": ">=", "=<": "<=", "=>": ">=",
             "under": "<", "below": "<", "less than": "<", "lower than": "<", "above": ">", "over": ">",
             "more than": ">", "greater than": ">", "higher than": ">", "at least": ">=", "at most": "<=",
             "no more than": "<=", "not exceed": "<=", "within": "<="}  # fmt: skip
_OP = r"(?:<=|>=|=<|=>|≤|≥|<|>|no\s+more\s+than|not\s+exceed|less\s+than|lower\s+than|more\s+than|greater\s+than|" \
      r"higher\s+than|at\s+least|at\s+most|under|below|above|over)"  # fmt: skip
_VALUE_UNIT = r"(?P<value>\d+(?:[.,]\d+)?)\s*(?P<unit>%|ms|milliseconds?|s|sec(?:ond)?s?|min(?:ute)?s?|m|hours?|h|x|σ|" \
              r"sigma|rps|qps|req/s|mb|gb|kb)?(?![\w])"  # fmt: skip
# "Error rate < 1%", "p95 latency under 200ms", "Response time < 2 seconds".
OP_VALUE_RE = re.compile(rf"(?<![\w<>=-])(?P<op>{_OP})\s*{_VALUE_UNIT}", re.IGNORECASE)
# "> 99.9 % success", "≥ 95% pass rate": operator and value first.
THRESHOLD_FIRST_RE = re.compile(rf"(?:^|[\s:(])(?P<op>{_OP})\s*{_VALUE_UNIT}\s+(?P<metric>[A-Za-z][\w /-]{{1,40}})",
                                re.IGNORECASE)  # fmt: skip
# A metric's name must say what is measured.
METRIC_WORDS_RE = re.compile(
    r"\b(?:rate|latency|time|p\d{2,3}|percentile|errors?|cpu|memory|mem|disk|usage|load|throughput|rps|qps|"
    r"availability|uptime|success|failures?|failed|timeouts?|lcp|inp|cls|fid|ttfb|apdex|saturation|utili[sz]ation|"
    r"queue|lag|drops?|crash(?:es)?|5xx|4xx|adoption|diff|tolerance|conversion|duration|slo|sli|budget|connections?|"
    r"requests?|responses?|performance|degradation|complaints|tickets)\b",
    re.IGNORECASE,
)
SUSTAIN_RE = re.compile(r"\bfor\s+(?P<n>\d+)\s*(?P<unit>min(?:ute)?s?|m|hours?|h|seconds?|s)\b|\bsustained\b", re.IGNORECASE)

# --- rollout stages -----------------------------------------------------------------------------------

PERCENT_RE = re.compile(r"(?<![\w.])(?P<percent>\d{1,3}(?:\.\d+)?)\s*%")
# A percentage is a traffic stage when written with one of these words.
STAGE_WORDS_RE = re.compile(
    r"\b(?:traffic|stage|phase|canary|cohort|rollout|roll[\s-]out|ramp|wave|users|requests|weight|split|shift|"
    r"exposure|flag|percentage)\b",
    re.IGNORECASE,
)
# nginx upstream weights: "server 10.0.0.6:8080 weight=5;".
NGINX_WEIGHT_RE = re.compile(r"^\s*server\s+(?P<server>\S+)(?:\s+[^;]*?)?\bweight=(?P<weight>\d+)", re.MULTILINE)
HOLD_LABEL_RE = re.compile(r"^(?:duration|hold|bake\s+time|soak(?:\s+time)?|wait|observe|observation|monitor(?:ing)?)$",
                           re.IGNORECASE)  # fmt: skip
# A hold written on the stage's own line: "Stage 1 (10%) — hold 15 min", "bake for 2 hours", "5% of traffic
# for 30 minutes". The word must be followed by a number (the duration itself is read by the caller).
INLINE_HOLD_RE = re.compile(r"\b(?:hold|bake|soak|wait|observe|monitor)(?:\s+(?:for|time|period))?\s*[:=\-–—]?\s*(?=\d)"
                            r"|\bfor\s+(?=\d)", re.IGNORECASE)  # fmt: skip

# --- mojibake ---------------------------------------------------------------------------------------

# UTF-8 read as Windows-1252/Latin-1 leaves these pairs ("âœ…", "ðŸš€", "Ã©"). Only lines holding one are
# handed to ftfy, which keeps large clean files fast.
MOJIBAKE_HINT_RE = re.compile(
    "[ÂÃÅÆâðÐÑÎÏ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014"
    "\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)


# --- where an approval stands: before the start, or at the end -------------------------------------

# A section that is done before anything is touched: its approvals must be given before the start.
BEFORE_START_SECTION_RE = re.compile(
    r"\bpre[-\s]?(?:deploy\w*|launch|release|flight|requisites?|implementation|cutover|go[-\s]?live|production)\b"
    r"|\bprerequisites?\b|\bbefore\s+(?:the\s+)?(?:deploy\w*|launch|release|start|go[-\s]?live|cutover)\b"
    r"|\brequired\s+(?:approvals?|sign[-\s]?offs?)\b|\b(?:approvals?|sign[-\s]?offs?)\s+required\b"
    r"|\breadiness\b|\bchange\s+(?:approval|advisory)\b|\bauthori[sz]ation\s+to\s+(?:proceed|deploy|start)\b",
    re.IGNORECASE,
)
# A section that closes the deployment: its sign-offs confirm the outcome, after the work is done.
AFTER_START_SECTION_RE = re.compile(
    r"\bpost[-\s]?(?:deploy\w*|launch|release|go[-\s]?live|implementation|cutover|production)\b"
    r"|\bafter\s+(?:the\s+)?(?:deploy\w*|launch|release|go[-\s]?live|cutover)\b"
    r"|\bcomplet(?:ion|e)\b|\bclos(?:ure|e[-\s]?out|ing)\b|\bwrap[-\s]?up\b|\bhand[-\s]?(?:over|off)\b"
    r"|\bretrospective\b|\bsign[-\s]?offs?\b|\bsigned[-\s]off\b|\bacceptance\b",
    re.IGNORECASE,
)
