"""The project CA of the local stack (``smartcity.stack.tls``): what it makes, that it is kept, and when it is
made anew."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from smartcity.stack.tls import ensure_tls


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_server_certificate_is_signed_by_the_ca_for_the_loopback_names(tmp_path):
    files = ensure_tls(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=300)


def test_keys_and_the_keystore_password_are_readable_by_their_owner_only(tmp_path):
    files = ensure_tls(tmp_path)
    for path in (files.ca_key, files.key, files.keystore, files.keystore_password_file):
        assert _mode(path) == 0o600, path
    assert _mode(files.folder) == 0o700


def test_the_keystore_holds_the_same_key_and_chain_under_its_password(tmp_path):
    files = ensure_tls(tmp_path)
    key, cert, chain = pkcs12.load_key_and_certificates(files.keystore.read_bytes(), files.keystore_password().encode())
    assert cert == x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert chain == [x509.load_pem_x509_certificate(files.ca_cert.read_bytes())]
    assert key.public_key() == cert.public_key()


def test_python_tls_accepts_the_pair_and_verifies_the_host_against_the_ca(tmp_path):
    files = ensure_tls(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.cert, files.key)  # a key that does not match its certificate raises here
    client = ssl.create_default_context(cafile=files.ca_cert)
    assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED


def test_a_second_call_keeps_what_the_first_made(tmp_path):
    first = ensure_tls(tmp_path)
    before = {path: path.read_bytes() for path in (first.ca_cert, first.ca_key, first.cert, first.key, first.keystore)}
    ensure_tls(tmp_path)
    assert {path: path.read_bytes() for path in before} == before


def test_a_new_ca_gets_a_new_server_certificate(tmp_path):
    files = ensure_tls(tmp_path)
    old_cert = files.cert.read_bytes()
    files.ca_key.unlink()  # the CA is made anew: the old server certificate is not signed by it
    ensure_tls(tmp_path)
    assert files.cert.read_bytes() != old_cert
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(files.ca_cert.read_bytes()))


def test_a_server_certificate_from_another_ca_is_replaced(tmp_path):
    files = ensure_tls(tmp_path / "a")
    other = ensure_tls(tmp_path / "b")
    files.cert.write_bytes(other.cert.read_bytes())
    ensure_tls(tmp_path / "a")
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(files.ca_cert.read_bytes()))
