"""TLS for the server: its SSL context (reloaded when the files change) and, for
``aami stack up``, a local CA and a server certificate made with ``cryptography``.

The stack's files, in ``<state dir>/tls/``::

    ca.pem           the local CA certificate: what Prometheus (``tls_config: ca_file``),
                     the agent (``ca_file``), curl and the aami CLI trust
    ca-key.pem       its key (0600); it signs nothing but the server certificate
    server.pem       the server certificate (SAN localhost, 127.0.0.1, ::1), issued by the CA
    server-key.pem   its key (0600)

The CA is made once and kept, so whatever trusts it keeps working; the server certificate
is reissued when it is missing, not from this CA, for other names, or within 30 days of
expiry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "LOCAL_HOSTS",
    "ServerTls",
    "StackTls",
    "ensure_stack_tls",
    "server_context",
]

log = logging.getLogger(__name__)

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_CA_DAYS = 3650
_SERVER_DAYS = 397  # the longest validity public CAs may issue; the stack renews earlier
_RENEW_BEFORE = dt.timedelta(days=30)


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server-side context for the certificate chain and key (TLS 1.2 or newer)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    context.set_alpn_protocols(["http/1.1"])
    return context


class ServerTls:
    """The server's current SSL context.

    ``reload`` builds a whole new context from the files and swaps it in only if it loads:
    a half-copied certificate or a key that does not match leaves the old one serving.
    New connections use the new context; open ones keep theirs.
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._stamp = self._files_stamp()
        self.context = server_context(cert_file, key_file)

    def reload(self) -> bool:
        """Load the files again; True if the new certificate is now served."""
        stamp = self._files_stamp()
        try:
            context = server_context(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            log.error(
                "TLS: cannot load %s / %s (%s); still serving the previous certificate",
                self.cert_file,
                self.key_file,
                exc,
            )
            self._stamp = stamp  # do not retry the same broken files every check
            return False
        self.context, self._stamp = context, stamp
        log.warning("TLS: loaded the certificate in %s", self.cert_file)
        return True

    def reload_if_changed(self) -> bool:
        """Reload when either file changed since it was last loaded."""
        if self._files_stamp() == self._stamp:
            return False
        return self.reload()

    def _files_stamp(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for path in (self.cert_file, self.key_file):
            try:
                info = path.stat()
            except OSError:
                stamps.append((0, 0, 0))
            else:
                stamps.append((info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(stamps)


@dataclass(frozen=True, slots=True)
class StackTls:
    """The files of the stack's local CA and server certificate."""

    ca_file: Path
    ca_key_file: Path
    cert_file: Path
    key_file: Path


def ensure_stack_tls(directory: Path, hosts: Sequence[str] = LOCAL_HOSTS) -> StackTls:
    """Make (or keep) the local CA and a server certificate for ``hosts`` in ``directory``."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = StackTls(
        ca_file=directory / "ca.pem",
        ca_key_file=directory / "ca-key.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server-key.pem",
    )
    ca_cert, ca_key = _load_ca(files)
    if ca_cert is None or ca_key is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _make_ca(ca_key)
        _write(files.ca_key_file, _key_pem(ca_key), 0o600)
        _write(files.ca_file, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        log.info("TLS: made a local CA in %s", files.ca_file)
    if not _server_cert_ok(files, ca_cert, hosts):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _make_server_cert(key, ca_cert, ca_key, hosts)
        _write(files.key_file, _key_pem(key), 0o600)
        _write(files.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        log.info("TLS: issued a server certificate in %s", files.cert_file)
    return files


def _load_ca(
    files: StackTls,
) -> tuple[x509.Certificate | None, ec.EllipticCurvePrivateKey | None]:
    try:
        cert = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key_file.read_bytes(), password=None)
    except (OSError, ValueError):
        return None, None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None, None
    if _spki(cert.public_key()) != _spki(key.public_key()):
        return None, None
    if cert.not_valid_after_utc - _now() < _RENEW_BEFORE:
        return None, None
    return cert, key


def _server_cert_ok(files: StackTls, ca: x509.Certificate, hosts: Sequence[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
        key = serialization.load_pem_private_key(files.key_file.read_bytes(), password=None)
    except (OSError, ValueError):
        return False
    if _spki(cert.public_key()) != _spki(key.public_key()):
        return False
    if cert.issuer != ca.subject or cert.not_valid_after_utc - _now() < _RENEW_BEFORE:
        return False
    try:
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return set(names) == set(_san(hosts))


def _make_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "AAMI local stack"),
            x509.NameAttribute(NameOID.COMMON_NAME, "AAMI local stack CA"),
        ]
    )
    now = _now()
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _make_server_cert(
    key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: Sequence[str],
) -> x509.Certificate:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
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
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _san(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _spki(key: CertificatePublicKeyTypes | PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write a file whole with ``mode`` from the start (keys are never readable by others)."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)  # rename(2) is atomic: a reader sees the old file or the new
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
