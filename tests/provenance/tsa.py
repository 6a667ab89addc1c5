"""A local RFC 3161 timestamp authority for the tests: an HTTP server on 127.0.0.1 that answers
``application/timestamp-query`` with a signed ``TimeStampResp``, as a real TSA does.

Its certificate chain is its own: a root CA and a TSA certificate (ECDSA P-256, extended key
usage timeStamping, critical), so a test trusts it the way production trusts a commercial TSA:
by adding the TSA's root to the trust anchors (`timestamped_files`). c2pa checks a timestamp's
certificate against the same trust list as the signer's, with the timeStamping EKU instead.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from infra.dev_certs import certificate_builder, certificate_name, key_usage
from provenance.keys import SigningFiles

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
ORGANISATION = "Greenlight tests"
POLICY = "2.999.1"  # an OID under the arc X.660 sets aside for examples


@dataclass(frozen=True)
class TsaCertificates:
    """The TSA's root (what readers must trust) and its timestamping certificate and key."""

    root: x509.Certificate
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)


def tsa_certificates_create(name: str = "Local test TSA") -> TsaCertificates:
    """A root CA and a TSA certificate it issues, both valid from an hour ago for ten years."""
    not_before = datetime.now(UTC) - timedelta(hours=1)
    not_after = not_before + timedelta(days=3650)
    root_key, tsa_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = certificate_name(f"{name} Root CA", ORGANISATION)
    root = (
        certificate_builder(root_name, root_name, root_key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    certificate = (
        certificate_builder(
            certificate_name(name, ORGANISATION), root_name, tsa_key.public_key(), not_before, not_after
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return TsaCertificates(root=root, certificate=certificate, key=tsa_key)


def time_stamp_response(query: bytes, certificates: TsaCertificates, *, serial: int, at: datetime) -> bytes:
    """The DER ``TimeStampResp`` granting ``query`` (a DER ``TimeStampReq``) a token for time ``at``.

    The token is CMS SignedData over a TSTInfo that repeats the query's message imprint and
    nonce, with the signed attributes RFC 3161 and RFC 5816 ask for (content type, message
    digest, the signing certificate's ESSCertIDv2) and the TSA certificate included.
    """
    request = tsp.TimeStampReq.load(query)
    info: dict[str, object] = {
        "version": "v1",
        "policy": POLICY,
        "message_imprint": request["message_imprint"],
        "serial_number": serial,
        "gen_time": at.astimezone(UTC).replace(microsecond=0),
    }
    if request["nonce"].native is not None:
        info["nonce"] = request["nonce"].native
    tst_info = tsp.TSTInfo(info)
    certificate_der = certificates.certificate.public_bytes(serialization.Encoding.DER)
    certificate = asn1_x509.Certificate.load(certificate_der)
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_info.dump()).digest()]}),
        cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [{"certs": [{"cert_hash": hashlib.sha256(certificate_der).digest()}]}],
            }
        ),
    ]
    # DER orders a SET OF by its members' encodings; readers re-encode the set to check the signature.
    signed_attributes = cms.CMSAttributes(sorted(attributes, key=lambda attribute: attribute.dump()))
    signature = certificates.key.sign(signed_attributes.dump(), ec.ECDSA(hashes.SHA256()))
    signed_data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "tst_info", "content": tst_info},
            "certificates": [certificate],
            "signer_infos": [
                {
                    "version": "v1",
                    "sid": cms.SignerIdentifier(
                        {
                            "issuer_and_serial_number": {
                                "issuer": certificate.issuer,
                                "serial_number": certificate.serial_number,
                            }
                        }
                    ),
                    "digest_algorithm": {"algorithm": "sha256"},
                    "signed_attrs": signed_attributes,
                    "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                    "signature": signature,
                }
            ],
        }
    )
    token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    return bytes(tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump())


# A TimeStampResp that refuses the request: PKIStatusInfo { status rejection (2) }, no token.
TIME_STAMP_REJECTION = bytes.fromhex("30053003020102")


class LocalTsa:
    """An RFC 3161 timestamp authority on 127.0.0.1 for the length of a ``with`` block.

    ``url`` is where it answers; ``requests`` counts the queries it granted. ``clock`` gives the
    time it stamps (the real clock by default); with ``refuse`` set it rejects every query, as an
    authority that is out of service does.
    """

    def __init__(self, certificates: TsaCertificates | None = None) -> None:
        self.certificates = certificates or tsa_certificates_create()
        self.requests = 0
        self.refuse = False
        self.clock = lambda: datetime.now(UTC)
        self._serials = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-tsa", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/tsa"

    def answer(self, query: bytes) -> bytes:
        if self.refuse:
            return TIME_STAMP_REJECTION
        with self._lock:
            serial = next(self._serials)
            self.requests += 1
        return time_stamp_response(query, self.certificates, serial=serial, at=self.clock())

    def __enter__(self) -> LocalTsa:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def timestamped_files(files: SigningFiles, tsa: LocalTsa, directory: Path) -> SigningFiles:
    """``files`` timestamped by ``tsa``, with the TSA's root added to a copy of their trust anchors
    (written in ``directory``): what production does with a TSA's published root."""
    directory.mkdir(parents=True, exist_ok=True)
    anchors = directory / "anchors-with-tsa.pem"
    anchors.write_bytes(files.trust_anchors.read_bytes() + tsa.certificates.root_pem())
    return replace(files, trust_anchors=anchors, tsa_url=tsa.url)


def _handler(tsa: LocalTsa) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            query = self.rfile.read(length)
            if self.headers.get("Content-Type") != QUERY_TYPE:
                self._reply(415, b"", "text/plain")
                return
            try:
                reply = tsa.answer(query)
            except ValueError:  # not a TimeStampReq
                reply = TIME_STAMP_REJECTION
            self._reply(200, reply, REPLY_TYPE)

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests count requests instead."""

    return Handler
