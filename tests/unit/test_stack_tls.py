"""The project CA of the local stack (``smartcity.stack.tls``): what it makes, that it is kept, and when it is
made anew."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from psycopg.conninfo import conninfo_to_dict
from typer.testing import CliRunner

from smartcity import stack
from smartcity.backends.bus.kafka import _with_tls as kafka_tls
from smartcity.backends.cache.redis import tls_options as redis_tls_options
from smartcity.backends.database.postgres import conninfo_from_url
from smartcity.cli import app
from smartcity.settings import Settings, get_settings
from smartcity.stack.ferretdb import FerretDBService
from smartcity.stack.kafka import KafkaService
from smartcity.stack.postgres import PostgresService
from smartcity.stack.redis import RedisService
from smartcity.stack.s3 import S3Service
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


# --- the servers' TLS configuration and the clients' options (no server started) ----------------------------------


def _tls_settings(tmp_path, **changes) -> Settings:
    return Settings(stack_dir=tmp_path, stack_tls=True, kafka_port=19092, postgres_port=15432, redis_port=16379,
                    ferretdb_port=27018, s3_port=19000, **changes)


def test_settings_env_gives_tls_urls_and_the_ca_when_the_stack_runs_with_tls(tmp_path):
    env = stack.settings_env(_tls_settings(tmp_path))
    assert env["SMARTCITY_BUS_URL"] == "kafka://127.0.0.1:19092?security.protocol=SSL"
    assert env["SMARTCITY_DATABASE_URL"] == "postgresql://smartcity@127.0.0.1:15432/smartcity?sslmode=verify-full"
    assert env["SMARTCITY_DOCUMENTS_URL"] == "mongodb://127.0.0.1:27018/smartcity?tls=true"
    assert env["SMARTCITY_CACHE_URL"] == "rediss://127.0.0.1:16379/0"
    assert env["SMARTCITY_OBJECTS_URL"] == "s3://127.0.0.1:19000/smartcity?secure=true"
    assert env["SMARTCITY_BACKUP_URL"] == "s3://127.0.0.1:19000/smartcity-backups?secure=true"
    assert env["SMARTCITY_TLS_CA_FILE"] == str(tmp_path / "tls" / "ca.pem")


def test_each_server_listens_with_tls_only_from_the_project_ca(tmp_path):
    settings = _tls_settings(tmp_path)
    files = ensure_tls(tmp_path)
    redis = RedisService(settings).command()
    assert redis[redis.index("--port") + 1] == "0" and redis[redis.index("--tls-port") + 1] == "16379"
    assert redis[redis.index("--tls-cert-file") + 1] == str(files.cert)
    ferretdb = FerretDBService(settings).command()
    assert "--listen-addr=" in ferretdb and "--listen-tls=127.0.0.1:27018" in ferretdb
    postgres = PostgresService(settings).command()
    assert "--ssl=on" in postgres and any(flag.startswith("--hba-file=") for flag in postgres)
    kafka = dict(line.split("=", 1) for line in KafkaService(settings).server_properties().splitlines())
    assert kafka["listeners"].startswith("SSL://127.0.0.1:19092,") and kafka["inter.broker.listener.name"] == "SSL"
    assert kafka["ssl.keystore.location"] == str(files.keystore)
    assert kafka["ssl.keystore.password"] == files.keystore_password()
    s3 = S3Service(settings)
    s3.dir.mkdir(parents=True)
    s3.prepare()
    properties = s3.properties_file.read_text()
    assert "s3proxy.secure-endpoint=https://127.0.0.1:19000" in properties and "s3proxy.endpoint=" not in properties


def test_without_stack_tls_the_servers_stay_plaintext(tmp_path):
    settings = Settings(stack_dir=tmp_path, redis_port=16379)
    assert "--tls-port" not in RedisService(settings).command()
    assert "--ssl=on" not in PostgresService(settings).command()
    assert "SSL" not in KafkaService(settings).server_properties()
    assert "SMARTCITY_TLS_CA_FILE" not in stack.settings_env(settings)


def test_the_clients_verify_against_the_ca_of_the_settings(tmp_path):
    settings = Settings(tls_ca_file=tmp_path / "ca.pem", secrets_dir=tmp_path)
    ca = str(tmp_path / "ca.pem")
    assert redis_tls_options("rediss://h:1/0", settings) == {
        "ssl_cert_reqs": "required", "ssl_check_hostname": True, "ssl_ca_certs": ca}
    assert redis_tls_options("redis://h:1/0", settings) == {}
    kafka = kafka_tls({"bootstrap.servers": "h:1", "security.protocol": "SSL"}, settings)
    assert kafka["ssl.ca.location"] == ca and kafka["ssl.endpoint.identification.algorithm"] == "https"
    assert kafka_tls({"bootstrap.servers": "h:1"}, settings) == {"bootstrap.servers": "h:1"}
    named = kafka_tls({"security.protocol": "SSL", "ssl.ca.location": "/other.pem"}, settings)
    assert named["ssl.ca.location"] == "/other.pem"  # the URL's own wins
    assert conninfo_to_dict(conninfo_from_url("postgresql://u@h/db?sslmode=verify-full", "S", settings))["sslrootcert"] == ca
    assert "sslrootcert" not in conninfo_to_dict(conninfo_from_url("postgresql://u@h/db?sslmode=require", "S", settings))


def test_cli_tls_init_makes_the_ca_and_the_gateway_wants_both_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTCITY_STACK_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        made = CliRunner().invoke(app, ["stack", "tls", "init"])
        assert made.exit_code == 0, made.output
        assert str(tmp_path / "tls" / "ca.pem") in made.output and (tmp_path / "tls" / "server-key.pem").exists()
        half = CliRunner().invoke(app, ["functions", "gateway", "--ssl-certfile", str(tmp_path / "tls" / "server.pem")])
        assert half.exit_code == 2 and "go together" in " ".join(half.output.replace("│", " ").split()), half.output
    finally:
        get_settings.cache_clear()
