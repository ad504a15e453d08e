"""Is this report what Warroom issued, unchanged, and does it still match the records?

Four questions, asked in order, each answered in words:

1. Is the signature valid (cryptographically sound)?
2. Is the document unchanged since it was signed? Warroom adds nothing after signing,
   so any byte after the signed range counts: each incremental update is named by
   what it changed (the document's Title, the catalog, other objects) and bytes glued
   after the end are counted.
3. Was it signed by this Warroom's certificate?
4. Does the attached record's final event hash match this Warroom's event chain for
   that deployment — a chain that itself still matches its signed checkpoints? The latest
   head matches; so does an earlier point of the chain when the file is one this Warroom
   issued as a version of the final report (reports.versions): it is named as that version.

and one verdict: authentic, modified, unknown signer, or not matching records. Files
that cannot be judged (not a PDF, no signature, cut short) get their own verdict and
a sentence that says what is wrong. Nothing here raises on bad input.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO

from deployments.events import event_hash, verify_chain
from deployments.models import Deployment, Event
from deployments.permissions import access_for
from reports.models import JobState, ReportJob
from reports.record import ATTACHMENT_NAME, RECORD_FORMAT
from reports.signing import SIGNATURE_FIELD, certificate_fingerprint, signing_identity

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    AUTHENTIC = "authentic"
    MODIFIED = "modified"
    UNKNOWN_SIGNER = "unknown signer"
    NOT_MATCHING = "not matching records"
    NOT_A_PDF = "not a PDF"
    UNSIGNED = "not signed"
    DAMAGED = "incomplete or damaged"

    @property
    def label(self) -> str:
        return self.value[0].upper() + self.value[1:]

    @property
    def is_good(self) -> bool:
        return self is Verdict.AUTHENTIC


@dataclass
class Check:
    question: str
    ok: bool | None  # None: not reached, because an earlier answer already decided
    detail: str = ""


@dataclass
class Verification:
    verdict: Verdict
    headline: str
    checks: list[Check] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)

    def as_text(self) -> str:
        lines = [f"Verdict: {self.verdict.value.upper()}", self.headline, ""]
        for check in self.checks:
            mark = {True: "yes", False: "NO", None: "not checked"}[check.ok]
            lines.append(f"- {check.question} {mark}" + (f": {check.detail}" if check.detail else ""))
        if self.facts:
            lines.append("")
            lines += [f"{label}: {value}" for label, value in self.facts]
        return "\n".join(lines)


QUESTIONS = (
    "Signature valid?",
    "Document unchanged since signing?",
    "Signed by this Warroom?",
    "Matches this Warroom's records?",
)


def _checks(*answers: tuple[bool, str]) -> list[Check]:
    """The four questions, the first len(answers) answered, the rest marked not reached."""
    checks = [Check(question, ok, detail) for question, (ok, detail) in zip(QUESTIONS, answers, strict=False)]
    return checks + [Check(question, None) for question in QUESTIONS[len(answers) :]]


def verify_report(data: bytes, *, viewer=None) -> Verification:
    """Judge the bytes of an uploaded or downloaded report.

    ``viewer``: the person asking, on the web. Someone who is not part of the
    deployment learns whether the report matches, not what happened since.
    """
    facts = [("File", f"{len(data):,} bytes, SHA-256 {hashlib.sha256(data).hexdigest()}")]
    try:
        return _verify(data, viewer, facts)
    except Exception as exc:  # the last line of defence: a verdict, never a traceback
        log.exception("report verification failed unexpectedly")
        return Verification(Verdict.DAMAGED, f"The file could not be checked: {type(exc).__name__}: {exc}", _checks(), facts)


def _verify(data: bytes, viewer, facts: list) -> Verification:
    if not data:
        return Verification(Verdict.NOT_A_PDF, "The file is empty.", _checks(), facts)
    if b"%PDF-" not in data[:1024]:
        return Verification(Verdict.NOT_A_PDF, "This file is not a PDF, so it cannot be a Warroom report.", _checks(), facts)
    # Bytes glued after a signed PDF's end (not a PDF update at all) hide its %%EOF: judge the
    # signed part, and say what follows it, rather than calling it an incomplete download.
    document = data if b"%%EOF" in data[-1024:] else _signed_part(data)
    if document is None:
        return Verification(
            Verdict.DAMAGED,
            "The file stops before the end of the PDF: it looks like an incomplete download. Download the report again.",
            _checks(),
            facts,
        )

    from pyhanko.pdf_utils.reader import PdfFileReader  # noqa: PLC0415 (pyHanko is heavy: only processes that verify load it)

    try:
        reader = PdfFileReader(BytesIO(document), strict=False)
        signatures = list(reader.embedded_signatures)
    except Exception as exc:
        return Verification(Verdict.DAMAGED, f"The PDF is damaged and cannot be read ({exc}).", _checks(), facts)

    record = _attached_record(reader)
    if record is not None:
        facts += _record_facts(record)
    if not signatures:
        headline = (
            "This is a Warroom report without a signature: it was re-saved or printed to a new PDF, "
            "or the download stopped before the signature."
            if record is not None
            else "This PDF carries no digital signature, so nothing about its origin can be checked."
        )
        return Verification(Verdict.UNSIGNED, headline, _checks((False, "the document has no signature")), facts)

    signature = next((s for s in signatures if s.field_name == SIGNATURE_FIELD), signatures[0])
    ours = signing_identity()
    try:
        status = _validate(signature, ours.certificate)
    except Exception as exc:
        return Verification(
            Verdict.DAMAGED,
            f"The signature cannot be read ({exc}).",
            _checks((False, "the signature data is damaged")),
            facts,
        )
    signer_fingerprint = certificate_fingerprint(status.signing_cert)
    facts += _signature_facts(status, signer_fingerprint)

    if not status.valid:
        return Verification(
            Verdict.MODIFIED,
            "The signature does not match the signer's key: the signature itself was altered.",
            _checks((False, "the signature value is not a signature over this document by this key")),
            facts,
        )
    if not status.intact:
        return Verification(
            Verdict.MODIFIED,
            "The document was changed after it was signed: its content no longer matches what was signed.",
            _checks((True, "sound signature"), (False, "the signed bytes were changed")),
            facts,
        )
    changes = _changes_after_signing(reader, signature, status, len(data))
    if changes:
        change = "; ".join(changes)
        return Verification(
            Verdict.MODIFIED,
            f"The document was changed after it was signed: {change}.",
            _checks((True, "sound signature"), (False, change)),
            facts,
        )
    signed_ok = (True, "sound signature, " + ("timestamped" if status.timestamp_validity else "no timestamp"))
    unchanged_ok = (True, "the signature covers the whole file")
    if signer_fingerprint != ours.fingerprint:
        return Verification(
            Verdict.UNKNOWN_SIGNER,
            f"The document is intact, but it was signed by “{status.signing_cert.subject.human_friendly}”, "
            "not by this Warroom: it may come from another Warroom or from someone else.",
            _checks(signed_ok, unchanged_ok, (False, f"signer SHA-256 {signer_fingerprint}, ours {ours.fingerprint}")),
            facts,
        )
    signer_ok = (True, f"SHA-256 {ours.fingerprint}")
    if record is None:
        return Verification(
            Verdict.NOT_MATCHING,
            "Signed by this Warroom, but the document carries no Warroom record to compare with the database.",
            _checks(signed_ok, unchanged_ok, signer_ok, (False, f"no {ATTACHMENT_NAME} attachment")),
            facts,
        )
    sha256 = hashlib.sha256(data).hexdigest()
    matches, detail, extra_facts = _compare_with_records(record, viewer, sha256=sha256)
    facts += extra_facts
    if not matches:
        return Verification(
            Verdict.NOT_MATCHING,
            f"Signed by this Warroom and unchanged, but it does not match the records: {detail}",
            _checks(signed_ok, unchanged_ok, signer_ok, (False, detail)),
            facts,
        )
    issued = _issued_version(int(record["deployment"]["id"]), record, sha256)
    return Verification(
        Verdict.AUTHENTIC,
        "Signed by this Warroom, unchanged since signing, and it matches the event log in the database."
        + (f" It is version {issued.version} of the report." if issued else ""),
        _checks(signed_ok, unchanged_ok, signer_ok, (True, detail)),
        facts,
    )


def _validate(signature, certificate):
    from pyhanko.sign.validation import validate_pdf_signature  # noqa: PLC0415 (pyHanko: only processes that verify load it)
    from pyhanko_certvalidator import ValidationContext  # noqa: PLC0415 (pyHanko: only processes that verify load it)

    context = ValidationContext(trust_roots=[certificate], allow_fetching=False, revocation_mode="soft-fail")
    return validate_pdf_signature(signature, signer_validation_context=context)


_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")


def _signed_part(data: bytes) -> bytes | None:
    """The bytes a signature covers, when the file goes on after them; None when it does not.

    A file cut short (its signed range runs past its end) or with no signature at all
    gives None: that is an incomplete download, not an addition.
    """
    ends = [int(m[3]) + int(m[4]) for m in _BYTE_RANGE.finditer(data)]
    ends = [end for end in ends if end < len(data) and b"%%EOF" in data[max(0, end - 1024) : end]]
    return data[: max(ends)] if ends else None


# The document information a reader shows in its title bar and properties dialog.
_INFO_NAMES = {
    "/Title": "Title",
    "/Author": "Author",
    "/Subject": "Subject",
    "/Keywords": "Keywords",
    "/Creator": "Creator",
    "/Producer": "Producer",
    "/CreationDate": "creation date",
    "/ModDate": "modification date",
}


def _changes_after_signing(reader, signature, status, file_size: int) -> list[str]:
    """Everything in the file that the signature does not cover, in words; empty if nothing.

    A Warroom report is signed last and nothing is ever added to it (no later
    signatures, no validation data), so any byte after the signed range is a change:
    each incremental update is described by what it changed, and the bytes are counted.
    """
    from pyhanko.sign.validation.status import SignatureCoverageLevel  # noqa: PLC0415 (pyHanko: only processes that verify load it)

    _, _, start2, length2 = (int(n) for n in signature.byte_range)
    signed_end = start2 + length2
    changes = []
    for revision in range(signature.signed_revision + 1, reader.total_revisions):
        changes += _describe_update(reader, revision)
    trailing = file_size - signed_end
    if trailing > 0:
        changes.append(f"{trailing:,} byte{'s' if trailing != 1 else ''} after the signed end")
    if trailing < 0 or status.coverage is None or status.coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        changes.append("the signature does not cover the whole document it belongs to")
    return changes


def _text(value) -> str:
    try:
        value = value.get_object()
    except AttributeError:
        pass
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _reference(trailer):
    """The reference of the trailer's /Info dictionary (None when it has none or holds it directly)."""
    raw = trailer.raw_get("/Info") if "/Info" in trailer else None
    return getattr(raw, "reference", None)


def _describe_update(reader, revision: int) -> list[str]:
    """What one incremental update changed: the document information, the catalog, other objects."""
    before, after = reader.get_historical_resolver(revision - 1), reader.get_historical_resolver(revision)
    said = []

    def info(resolver) -> dict:
        ref = _reference(resolver.trailer_view)  # read in that revision, not as the file ends
        raw = resolver.get_object(ref) if ref is not None else resolver.trailer_view.get("/Info")
        return dict(raw) if raw is not None else {}

    old_info, new_info = info(before), info(after)
    for key in sorted(set(old_info) | set(new_info)):
        old, new = old_info.get(key), new_info.get(key)
        if old is None or new is None or _text(old) != _text(new):
            name = _INFO_NAMES.get(key, key)
            if old is None:
                said.append(f"an update after signing added the document's {name} (“{_text(new)}”)")
            elif new is None:
                said.append(f"an update after signing removed the document's {name}")
            else:
                said.append(f"an update after signing changed the document's {name} (“{_text(old)}” → “{_text(new)}”)")
    old_root, new_root = before.root, after.root
    changed_keys = sorted(
        key
        for key in set(old_root) | set(new_root)
        if key not in old_root or key not in new_root or old_root.raw_get(key) != new_root.raw_get(key)
    )
    if changed_keys:
        said.append(f"an update after signing changed the document catalog ({', '.join(changed_keys)})")
    described = {after.root_ref} | {_reference(resolver.trailer_view) for resolver in (before, after)}
    others = [ref for ref in after.explicit_refs_in_revision() if ref not in described]
    if others:
        said.append(
            f"an update after signing rewrote {len(others)} other object{'s' if len(others) != 1 else ''} of the document"
        )
    return said or ["an update after signing was added (it changes nothing visible)"]


def _attached_record(reader) -> dict | None:
    """The JSON record attached to the PDF, or None if it is missing or unreadable."""
    try:
        raw = _embedded_files(reader).get(ATTACHMENT_NAME)
        if raw is None:
            return None
        record = json.loads(raw)
    except Exception:
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        return None
    return record


def _embedded_files(reader) -> dict[str, bytes]:
    files = {}
    names = reader.root.get("/Names")
    tree = names.get_object().get("/EmbeddedFiles") if names is not None else None
    pending = [tree.get_object()] if tree is not None else []
    while pending:  # a name tree: /Names arrays of [name, filespec, …] and /Kids below
        node = pending.pop()
        for kid in node.get("/Kids", []):
            pending.append(kid.get_object())
        entries = list(node.get("/Names", []))
        for name, spec in zip(entries[::2], entries[1::2], strict=False):
            stream = spec.get_object()["/EF"].get_object()
            stream = stream.get("/UF") or stream["/F"]
            files[str(name)] = stream.get_object().data
    return files


def _record_facts(record: dict) -> list[tuple[str, str]]:
    try:
        deployment = record["deployment"]
        chain = record["chain"]
        return [
            ("Deployment", f"{deployment['name']} (#{deployment['id']}, {deployment['service']} {deployment['version']})"),
            ("Report generated", record["generated_at"] + (" — interim report" if record.get("interim") else "")),
            ("Events in the report", f"{chain['count']}, final hash {chain['final_hash']}"),
            *_version_facts(record.get("version")),
        ]
    except (KeyError, TypeError):
        return []


def _version_facts(version) -> list[tuple[str, str]]:
    """What the signed record says about its own version (reports.versions)."""
    if not isinstance(version, dict) or not version.get("number"):
        return []
    follows = version.get("follows") or {}
    after = f" (follows version {follows['number']})" if follows.get("number") else ""
    return [("Report version", f"{version['number']}: {version.get('changes', '')}{after}")]


def _signature_facts(status, fingerprint: str) -> list[tuple[str, str]]:
    facts = [("Signer", f"{status.signing_cert.subject.human_friendly} (SHA-256 {fingerprint})")]
    if status.signer_reported_dt:
        facts.append(("Signed at (signer's clock)", status.signer_reported_dt.isoformat()))
    if status.timestamp_validity is not None:
        tst = status.timestamp_validity
        facts.append(
            (
                "Timestamp",
                f"{tst.timestamp.isoformat()} from {tst.signing_cert.subject.human_friendly}"
                + ("" if tst.intact and tst.valid else " — the timestamp token is not valid"),
            )
        )
    return facts


def _embedded_chain_problem(record: dict) -> str:
    """Recompute the attached events' chain: the record must agree with itself."""
    events = record.get("events") or []
    prev = ""
    for event in events:
        if event["prev_hash"] != prev:
            return f"event #{event['seq']} does not point at the hash of the event before it"
        recomputed = event_hash(
            deployment_id=record["deployment"]["id"],
            seq=event["seq"],
            created_at=datetime.fromisoformat(event["created_at"]),
            actor_id=event["actor_id"],
            actor_label=event["actor_label"],
            action=event["action"],
            object_type=event["object_type"],
            object_id=event["object_id"],
            summary=event["summary"],
            before=event["before"],
            after=event["after"],
            prev_hash=event["prev_hash"],
        )
        if recomputed != event["hash"]:
            return f"event #{event['seq']} does not hash to the value recorded for it"
        prev = event["hash"]
    if len(events) != record["chain"]["count"] or prev != record["chain"]["final_hash"]:
        return "the attached events do not end in the final hash the report states"
    return ""


def _issued_version(deployment_id: int, record: dict, sha256: str):
    """The report job that issued exactly this file as a version of the final report, or None.

    The file's own hash ties it to the register of issued PDFs; its record must name the same
    version and the same head of the log the job recorded."""
    version = record.get("version")
    number = version.get("number") if isinstance(version, dict) else None
    if not number:
        return None
    return (
        ReportJob.objects.filter(
            deployment_id=deployment_id,
            state=JobState.DONE,
            sha256=sha256,
            version=number,
            event_count=record["chain"]["count"],
            final_hash=record["chain"]["final_hash"],
        )
        .order_by("id")
        .first()
    )


def _later_versions(job) -> str:
    latest = (
        ReportJob.objects.filter(deployment_id=job.deployment_id, state=JobState.DONE, version__gt=job.version)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    if latest is None:
        return ""
    return f"version {latest} is the latest" if latest == job.version + 1 else f"versions up to {latest} were issued after it"


def _compare_with_records(record: dict, viewer, *, sha256: str = "") -> tuple[bool, str, list[tuple[str, str]]]:
    try:
        deployment_id = int(record["deployment"]["id"])
        count = int(record["chain"]["count"])
        final_hash = str(record["chain"]["final_hash"])
        problem = _embedded_chain_problem(record)
    except (KeyError, TypeError, ValueError):
        return False, "the attached record is incomplete", []
    if problem:
        return False, f"the attached record is not consistent: {problem}", []
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if deployment is None:
        return False, f"this Warroom has no deployment #{deployment_id}", []
    may_see = viewer is None or access_for(viewer, deployment).can_view
    chain = verify_chain(deployment_id)
    if not chain.ok:
        return False, f"the database's own event log fails verification ({chain.problem})", []
    issued = _issued_version(deployment_id, record, sha256)
    if (deployment.event_count, deployment.last_event_hash) == (count, final_hash):
        said = f"; this is version {issued.version} of the report" if issued else ""
        return True, f"final hash matches event #{count}, the latest in the database{said}", []
    same_point = Event.objects.filter(deployment_id=deployment_id, seq=count).values_list("hash", flat=True).first()
    if same_point == final_hash and deployment.event_count > count and issued is not None:
        # An earlier version of the final report: what it says was true up to its event, and it
        # was issued as that version. Later versions add to it; they do not make it wrong.
        later = _later_versions(issued)
        if not may_see:
            return True, f"this is version {issued.version} of the report; a later version may exist", []
        newer = deployment.event_count - count
        return (
            True,
            f"this is version {issued.version} of the report: its final hash matches event #{count} in the database"
            + (f"; {later}" if later else f"; {newer} event{'s' if newer != 1 else ''} were recorded after it"),
            [("Events in the database", f"{deployment.event_count}, final hash {deployment.last_event_hash}")],
        )
    if same_point == final_hash and deployment.event_count > count:
        newer = deployment.event_count - count
        if not may_see:
            return False, "the deployment's log has moved on since this report was made; ask its team for a new report", []
        return (
            False,
            f"the report matches the log up to event #{count}, but {newer} event{'s' if newer != 1 else ''} "
            "were recorded after it was made; export a new report for the current state",
            [("Events in the database", f"{deployment.event_count}, final hash {deployment.last_event_hash}")],
        )
    return False, f"event #{count} in the database has a different hash from the report's final hash", []
