"""The verifier: one clear verdict for every kind of file, never a traceback."""

import datetime
import http.server
import threading
from io import BytesIO

import pytest
from asn1crypto import keys, tsp, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from deployments import services as deployment_services
from deployments.models import ChainCheckpoint
from reports import rendering, signing
from reports.exports import export_report
from reports.record import build_record
from reports.signing import SigningIdentity, generate_self_signed
from reports.verification import Verdict, verify_report
from tests.deployments.test_checkpoints import rewrite_and_recompute


@pytest.fixture
def report(finished_crew):
    deployment, people = finished_crew
    return deployment, people, export_report(deployment.pk, "pdf").content


def test_fresh_report_is_authentic(report):
    _, _, pdf = report
    result = verify_report(pdf)
    assert result.verdict is Verdict.AUTHENTIC, result.as_text()
    assert all(check.ok for check in result.checks)
    assert "Expense Accounts 3.4" in result.as_text()


def test_one_changed_byte_is_modified(report):
    _, _, pdf = report
    # A byte inside the page content (compressed streams sit in the middle of the file).
    middle = len(pdf) // 3
    tampered = pdf[:middle] + bytes([pdf[middle] ^ 0x01]) + pdf[middle + 1 :]
    result = verify_report(tampered)
    assert result.verdict is Verdict.MODIFIED, result.as_text()
    assert "changed after it was signed" in result.headline


def test_one_changed_word_is_modified(report):
    _, _, pdf = report
    # The document information is plain text in the file: claim someone else wrote it.
    assert pdf.count(b"/Author (Warroom)") == 1
    tampered = pdf.replace(b"/Author (Warroom)", b"/Author (Mallory)")
    assert len(tampered) == len(pdf)
    assert verify_report(tampered).verdict is Verdict.MODIFIED


def test_content_appended_after_signing_is_modified(report):
    """A proper PDF edit (an incremental update, what a PDF editor saves) after the signature."""
    _, _, pdf = report
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    writer.root["/Lang"] = generic.TextStringObject("de")
    writer.update_root()
    edited = BytesIO()
    writer.write(edited)
    result = verify_report(edited.getvalue())
    assert result.verdict is Verdict.MODIFIED, result.as_text()
    assert "an update after signing changed the document catalog (/Lang)" in result.headline


def _with_title(pdf: bytes, title: str) -> bytes:
    """What a PDF editor's "Save" does after changing the document's title: an incremental update."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    info_ref = writer.trailer.raw_get("/Info")
    info = info_ref.get_object()
    info["/Title"] = generic.TextStringObject(title)
    writer.mark_update(info_ref)
    edited = BytesIO()
    writer.write(edited)
    return edited.getvalue()


def test_an_update_that_changes_the_title_is_modified(report):
    _, _, pdf = report
    edited = _with_title(pdf, "Nothing happened tonight")
    result = verify_report(edited)
    assert result.verdict is Verdict.MODIFIED, result.as_text()
    assert "an update after signing changed the document's Title" in result.headline
    assert "“Nothing happened tonight”" in result.headline
    assert f"{len(edited) - len(pdf):,} bytes after the signed end" in result.headline
    assert [check.ok for check in result.checks[:2]] == [True, False]  # the signed part itself is sound


@pytest.mark.parametrize("extra", [b"\n", b"% a comment\n" * 26, b"\x00" * 5000])
def test_bytes_appended_after_the_end_are_modified(report, extra):
    _, _, pdf = report
    result = verify_report(pdf + extra)
    assert result.verdict is Verdict.MODIFIED, result.as_text()
    count = len(extra)
    assert f"{count:,} byte{'s' if count != 1 else ''} after the signed end" in result.headline
    assert result.checks[0].ok is True and result.checks[1].ok is False


def test_a_second_update_after_a_title_change_is_named_too(report):
    _, _, pdf = report
    twice = _with_title(_with_title(pdf, "First edit"), "Second edit")
    result = verify_report(twice)
    assert result.verdict is Verdict.MODIFIED
    assert "“First edit”" in result.headline and "“First edit” → “Second edit”" in result.headline


def test_each_signed_report_anchors_the_head_it_quotes(report):
    deployment, _, pdf = report
    deployment.refresh_from_db()
    checkpoint = ChainCheckpoint.objects.get(deployment=deployment, reason="report")
    assert (checkpoint.seq, checkpoint.head_hash) == (deployment.event_count, deployment.last_event_hash)
    assert verify_report(pdf).verdict is Verdict.AUTHENTIC


def test_a_rewritten_and_recomputed_chain_no_longer_matches_the_report(report):
    deployment, _, pdf = report
    rewrite_and_recompute(deployment.pk, 3, "nothing happened")
    result = verify_report(pdf)
    assert result.verdict is Verdict.NOT_MATCHING, result.as_text()
    assert "fails verification" in result.headline and "rewritten after that checkpoint" in result.headline


def test_event_after_export_is_not_matching_records(report):
    deployment, people, pdf = report
    deployment_services.set_participant(deployment, people["lead"], people["observer"], role_names=["DBA"])
    result = verify_report(pdf)
    assert result.verdict is Verdict.NOT_MATCHING, result.as_text()
    assert "matches the log up to event" in result.headline and "1 event were recorded after" in result.headline
    # An outsider who holds a copy learns that it no longer matches, not what happened since.
    outsider_view = verify_report(pdf, viewer=people["outsider"])
    assert outsider_view.verdict is Verdict.NOT_MATCHING
    assert "recorded after" not in outsider_view.as_text() and "moved on" in outsider_view.headline


@pytest.mark.parametrize(
    ("data", "verdict", "words"),
    [
        (b"", Verdict.NOT_A_PDF, "empty"),
        (b"Just some notes from the night.\n", Verdict.NOT_A_PDF, "not a PDF"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, Verdict.NOT_A_PDF, "not a PDF"),
        (b"%PDF-1.7\n%%EOF\n", Verdict.DAMAGED, "damaged"),
    ],
)
def test_not_a_report_at_all(db, data, verdict, words):
    result = verify_report(data)
    assert result.verdict is verdict and words in result.headline
    assert all(check.ok is None for check in result.checks)


def test_truncated_download(report):
    _, _, pdf = report
    for cut in (len(pdf) // 2, len(pdf) - 20):
        result = verify_report(pdf[:cut])
        assert result.verdict is Verdict.DAMAGED
        assert "incomplete download" in result.headline


def test_unsigned_pdf(finished_crew):
    deployment, _ = finished_crew
    unsigned = rendering.render_pdf(build_record(deployment.pk), paper="a4").content
    result = verify_report(unsigned)
    assert result.verdict is Verdict.UNSIGNED
    assert "Warroom report without a signature" in result.headline


def test_a_report_from_another_warroom_is_an_unknown_signer(finished_crew, tmp_path):
    deployment, _ = finished_crew
    generate_self_signed(tmp_path, common_name="Warroom report signing (elsewhere)")
    other = SimpleSigner.load(str(tmp_path / signing.KEY_FILE), str(tmp_path / signing.CERT_FILE))
    elsewhere = SigningIdentity(signer=other, certificate=other.signing_cert, source="another Warroom")
    pdf = signing.sign_pdf(rendering.render_pdf(build_record(deployment.pk), paper="a4").content, identity=elsewhere)
    result = verify_report(pdf)
    assert result.verdict is Verdict.UNKNOWN_SIGNER, result.as_text()
    assert "elsewhere" in result.headline
    assert [check.ok for check in result.checks] == [True, True, False, None]


def test_report_for_a_deployment_this_warroom_does_not_have(report):
    deployment, _, pdf = report
    # Same signer, but the record names a deployment id that does not exist here.
    record = build_record(deployment.pk)
    record["deployment"]["id"] = 987654321
    forged = signing.sign_pdf(rendering.render_pdf(record, paper="a4").content)
    result = verify_report(forged)
    assert result.verdict is Verdict.NOT_MATCHING
    assert "not consistent" in result.headline  # the events were hashed under the real id


def test_verification_survives_any_bytes(report):
    _, _, pdf = report
    for sample in (
        pdf[:2000] + b"%%EOF",
        pdf.replace(b"/ByteRange", b"/ByteRangX", 1),
        b"%PDF-" + bytes(range(256)) * 8 + b"%%EOF",
    ):
        result = verify_report(sample)
        assert result.verdict in (Verdict.DAMAGED, Verdict.UNSIGNED, Verdict.MODIFIED), result.as_text()


# --- configured identities and timestamps ----------------------------------------------------


def _key_and_cert(common_name: str, *, tsa: bool = False):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        cx509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
    )
    if tsa:
        builder = builder.add_extension(cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return key, builder.sign(key, hashes.SHA256())


def test_configured_pkcs12_identity_signs_and_verifies(finished_crew, tmp_path, settings):
    deployment, _ = finished_crew
    key, cert = _key_and_cert("Example Corp deployment reports")
    p12 = tmp_path / "signing.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(b"warroom", key, cert, None, serialization.BestAvailableEncryption(b"s3cret-pass"))
    )
    settings.REPORT_SIGNING_P12 = str(p12)
    settings.REPORT_SIGNING_P12_PASSWORD = "s3cret-pass"
    identity, how = signing.ensure_signing_identity()
    assert how == "configured" and "Example Corp" in identity.subject
    result = verify_report(export_report(deployment.pk, "pdf").content)
    assert result.verdict is Verdict.AUTHENTIC, result.as_text()
    assert "Example Corp" in result.as_text()


def test_wrong_pkcs12_password_says_so(db, tmp_path, settings):
    key, cert = _key_and_cert("Example Corp")
    p12 = tmp_path / "signing.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(b"w", key, cert, None, serialization.BestAvailableEncryption(b"right")))
    settings.REPORT_SIGNING_P12 = str(p12)
    settings.REPORT_SIGNING_P12_PASSWORD = "wrong"
    with pytest.raises(signing.SigningIdentityError, match="WARROOM_SIGNING_P12_PASSWORD"):
        signing.signing_identity()


@pytest.fixture
def timestamp_authority():
    """A real RFC 3161 responder over HTTP (pyHanko's in-process TSA behind http.server)."""
    key, cert = _key_and_cert("Test TSA", tsa=True)
    stamper = DummyTimeStamper(
        tsa_cert=x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        tsa_key=keys.PrivateKeyInfo.load(
            key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        ),
    )
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(self.headers["Content-Type"])
            reply = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", requests
    server.shutdown()


def test_timestamp_server_is_used_when_configured(finished_crew, settings, timestamp_authority):
    deployment, _ = finished_crew
    url, requests = timestamp_authority
    settings.REPORT_TSA_URL = url
    pdf = export_report(deployment.pk, "pdf").content
    # pyHanko asks once to size the signature, then for the real timestamp.
    assert requests and set(requests) == {"application/timestamp-query"}
    result = verify_report(pdf)
    assert result.verdict is Verdict.AUTHENTIC, result.as_text()
    assert "from Common Name: Test TSA" in result.as_text()
    assert "timestamped" in result.checks[0].detail
