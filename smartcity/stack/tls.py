"""The project CA of the local stack, and the one server certificate it signs for 127.0.0.1 and localhost.

``smartcity stack tls init`` (and ``stack up`` when ``SMARTCITY_STACK_TLS`` is on) makes them once in
``<stack_dir>/tls/``: ``ca.pem`` (the bundle clients verify against, ``SMARTCITY_TLS_CA_FILE``), ``server.pem``
and ``server-key.pem`` (PEM, for PostgreSQL, Redis, FerretDB and the gateway) and ``server.p12`` (the same key
and chain as PKCS#12, for the Java servers: Kafka and S3Proxy), with its password in ``server.p12.password``.
Keys and the password are readable by their owner only. They are kept while the server certificate is valid for
:data:`RENEW_BEFORE` more and was signed by the CA that is there; otherwise the missing parts are made anew.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smartcity.stack.base import HOST

CA_DAYS = 3650
SERVER_DAYS = 825
RENEW_BEFORE = datetime.timedelta(days=30)
SERVER_NAMES = ("localhost",)
SERVER_ADDRESSES = (HOST, "::1")


@dataclass(frozen=True)
class StackTLS:
    """The files of the project CA and of the server certificate, in one folder."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca-key.pem"

    @property
    def cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def key(self) -> Path:
        return self.folder / "server-key.pem"

    @property
    def keystore(self) -> Path:
        return self.folder / "server.p12"

    @property
    def keystore_password_file(self) -> Path:
        return self.folder / "server.p12.password"

    def keystore_password(self) -> str:
        return self.keystore_password_file.read_text().strip()


def tls_files(stack_dir: Path) -> StackTLS:
    """Where the stack's CA and server certificate are (made or not)."""
    return StackTLS(stack_dir / "tls")


def ensure_tls(stack_dir: Path) -> StackTLS:
    """Make the CA and the server certificate in ``<stack_dir>/tls/`` unless valid ones are there; return them."""
    files = tls_files(stack_dir)
    files.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (files.folder / ".lock").open("w") as lock:  # services start at once, in threads or processes
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (files.ca_cert.exists() and files.ca_key.exists()):
            _write_ca(files)
        ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        if not _server_current(files, ca_cert):
            _write_server(files, ca_cert, ca_key)
    return files


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner may read, whatever it was before."""
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smartcity local stack"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_ca(files: StackTLS) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("smartcity local CA")).issuer_name(_name("smartcity local CA"))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(files.ca_key, _key_pem(key))
    files.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.cert.unlink(missing_ok=True)  # signed by the CA that was there before, if any


def _server_current(files: StackTLS, ca_cert: x509.Certificate) -> bool:
    """Whether the server certificate, its key and keystore are there, signed by this CA and valid for a while."""
    if not all(path.exists() for path in (files.cert, files.key, files.keystore, files.keystore_password_file)):
        return False
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):  # not signed by this CA: make it anew
        return False
    return cert.not_valid_after_utc - RENEW_BEFORE > _now()


def _write_server(files: StackTLS, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    names = [x509.DNSName(name) for name in SERVER_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in SERVER_ADDRESSES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(SERVER_NAMES[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    password = secrets.token_urlsafe(24)
    keystore = pkcs12.serialize_key_and_certificates(
        b"server", key, cert, [ca_cert], serialization.BestAvailableEncryption(password.encode())
    )
    write_private(files.key, _key_pem(key))
    write_private(files.keystore_password_file, password.encode())
    write_private(files.keystore, keystore)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
