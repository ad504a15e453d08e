"""Warroom's signing identity and the PAdES signature on every PDF report.

The identity comes from the environment (settings.REPORT_SIGNING_*): a PEM key and
certificate, or one PKCS#12 file. With neither, a self-signed pair is generated once
under REPORT_SIGNING_DIR (``.run/signing/`` by default) and a warning says so: such a
certificate proves "made by this Warroom", which is what the verifier checks, but
nobody outside knows it. ``manage.py ensure_signing_identity`` does the same up front.

pyHanko's ``sign_pdf`` runs its own event loop (``asyncio.run``), so callers inside a
loop use ``sign_pdf_async``; the sync ``sign_pdf`` moves to a helper thread when it
finds itself inside one.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings

from deployments.checkpoints import CheckpointKey

log = logging.getLogger(__name__)

SIGNATURE_FIELD = "WarroomReport"
KEY_FILE = "key.pem"
CERT_FILE = "cert.pem"
GENERATED_VALIDITY = timedelta(days=3650)


class SigningIdentityError(RuntimeError):
    """The configured key or certificate cannot be used; the message says which and why."""


@dataclass(frozen=True)
class SigningIdentity:
    signer: object  # pyhanko.sign.signers.SimpleSigner
    certificate: object  # asn1crypto.x509.Certificate
    source: str

    @property
    def fingerprint(self) -> str:
        return certificate_fingerprint(self.certificate)

    @property
    def subject(self) -> str:
        return self.certificate.subject.human_friendly

    @property
    def not_after(self) -> datetime:
        return self.certificate["tbs_certificate"]["validity"]["not_after"].native


def certificate_fingerprint(certificate) -> str:
    """SHA-256 over the DER certificate, the way certificate viewers show it."""
    return hashlib.sha256(certificate.dump()).hexdigest()


def _configured() -> tuple[str, ...]:
    return (
        settings.REPORT_SIGNING_P12,
        settings.REPORT_SIGNING_P12_PASSWORD,
        settings.REPORT_SIGNING_KEY,
        settings.REPORT_SIGNING_CERT,
        settings.REPORT_SIGNING_KEY_PASSWORD,
        str(settings.REPORT_SIGNING_DIR),
    )


def signing_identity() -> SigningIdentity:
    """This Warroom's identity, loaded once per process (generated on first use if none is configured)."""
    return _load(_configured())


def ensure_signing_identity() -> tuple[SigningIdentity, str]:
    """The identity and how it was obtained: "configured", "existing" or "generated"."""
    config = _configured()
    p12, _, key, _, _, directory = config
    if p12 or key:
        return _load(config), "configured"
    existed = (Path(directory) / CERT_FILE).exists() and (Path(directory) / KEY_FILE).exists()
    return _load(config), "existing" if existed else "generated"


@lru_cache(maxsize=4)
def _load(config: tuple[str, ...]) -> SigningIdentity:
    from pyhanko.sign.signers import SimpleSigner  # noqa: PLC0415 (pyHanko is heavy: only processes that sign load it)

    p12, p12_password, key, cert, key_password, directory = config
    if p12:
        signer = SimpleSigner.load_pkcs12(p12, passphrase=p12_password.encode() or None)
        if signer is None:
            raise SigningIdentityError(f"Cannot read the PKCS#12 file {p12} (wrong WARROOM_SIGNING_P12_PASSWORD?)")
        return _identity(signer, f"PKCS#12 file {p12}")
    if key:
        signer = SimpleSigner.load(key, cert, key_passphrase=key_password.encode() or None)
        if signer is None:
            raise SigningIdentityError(f"Cannot read the signing key {key} or certificate {cert} (wrong key password?)")
        return _identity(signer, f"key {key} and certificate {cert}")
    path = Path(directory)
    created = generate_self_signed(path)
    signer = SimpleSigner.load(str(path / KEY_FILE), str(path / CERT_FILE))
    if signer is None:
        raise SigningIdentityError(
            f"The generated signing identity in {path} cannot be read; remove the directory to regenerate it"
        )
    identity = _identity(signer, f"self-signed certificate generated in {path}")
    if created:
        log.warning(
            "No signing identity configured (WARROOM_SIGNING_P12 or WARROOM_SIGNING_KEY/WARROOM_SIGNING_CERT): "
            "generated a self-signed certificate in %s, SHA-256 %s. Reports signed with it verify against this "
            "Warroom only; configure your organisation's certificate for production.",
            path,
            identity.fingerprint,
        )
    return identity


def _identity(signer, source: str) -> SigningIdentity:
    return SigningIdentity(signer=signer, certificate=signer.signing_cert, source=source)


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a key."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def generate_self_signed(directory: Path, *, common_name: str | None = None) -> bool:
    """Create key.pem and cert.pem in ``directory`` unless they exist. True if created.

    A file lock makes the web process and the worker agree on one pair when both
    reach for it at the same moment.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (directory / CERT_FILE).exists() and (directory / KEY_FILE).exists():
            return False
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name or f"Warroom report signing ({socket.gethostname()})"[:64]),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Warroom"),
            ]
        )
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + GENERATED_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,  # non-repudiation: a report is a statement, not a handshake
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        _write_private(directory / KEY_FILE, pem_key, 0o600)
        _write_private(directory / CERT_FILE, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
        return True


# --- signing ---------------------------------------------------------------------------


def _pdf_signer(identity: SigningIdentity):
    from pyhanko.sign import fields, signers  # noqa: PLC0415 (pyHanko: only processes that sign load it)
    from pyhanko.sign.timestamps import HTTPTimeStamper  # noqa: PLC0415 (pyHanko: only processes that sign load it)

    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason="Deployment report issued by Warroom",
        name=identity.certificate.subject.native.get("common_name", "Warroom"),
    )
    timestamper = HTTPTimeStamper(settings.REPORT_TSA_URL, timeout=20) if settings.REPORT_TSA_URL else None
    return signers.PdfSigner(meta, signer=identity.signer, timestamper=timestamper)


def _writer(data: bytes):
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # noqa: PLC0415 (pyHanko: only processes that sign load it)

    return IncrementalPdfFileWriter(BytesIO(data), strict=False)


async def sign_pdf_async(data: bytes, identity: SigningIdentity | None = None) -> bytes:
    """Sign inside a running event loop (pyHanko's async API)."""
    pdf_signer = _pdf_signer(identity or signing_identity())
    output = await pdf_signer.async_sign_pdf(_writer(data))
    return output.getvalue()


def sign_pdf(data: bytes, identity: SigningIdentity | None = None) -> bytes:
    """A PAdES signature (with an RFC 3161 timestamp when WARROOM_TSA_URL is set) over the whole PDF."""
    identity = identity or signing_identity()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _pdf_signer(identity).sign_pdf(_writer(data)).getvalue()
    # This thread already runs a loop, where asyncio.run refuses to start: use a helper thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, sign_pdf_async(data, identity)).result()


# --- checkpoints of the event chain ------------------------------------------------------


def checkpoint_key():
    """The report-signing key as deployments.checkpoints uses it: sign and verify short statements."""
    identity = signing_identity()
    return _checkpoint_key(identity.fingerprint, identity.signer.signing_key.dump(), identity.certificate.dump())


@lru_cache(maxsize=4)
def _checkpoint_key(fingerprint: str, private_der: bytes, certificate_der: bytes):

    private = serialization.load_der_private_key(private_der, password=None)
    public = x509.load_der_x509_certificate(certificate_der).public_key()
    if isinstance(private, rsa.RSAPrivateKey):
        args = (padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        args = (ec.ECDSA(hashes.SHA256()),)
    else:  # Ed25519 / Ed448 sign the message itself
        args = ()

    def verify(data: bytes, signature: bytes) -> bool:
        try:
            public.verify(signature, data, *args)
        except Exception:
            return False
        return True

    return CheckpointKey(f"report signing key SHA-256 {fingerprint}", lambda data: private.sign(data, *args), verify)
