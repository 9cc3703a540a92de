"""An S3-compatible object server: S3Proxy (Apache-2.0) on its filesystem backend; the ``minio`` client works with it.

The jars come from Maven Central (``infra/local/s3proxy/pom.xml``). Its access and secret keys are made once and
kept as the secret files ``s3-access-key`` and ``s3-secret-key`` in ``<stack_dir>/secrets`` (the folder that
``SMARTCITY_SECRETS_DIR`` names for the platform). Objects are files under ``<stack_dir>/s3/data``. Once healthy,
the platform's bucket exists. With ``SMARTCITY_STACK_TLS`` it serves HTTPS only (``s3proxy.secure-endpoint``), from
the project CA's PKCS#12 keystore.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from smartcity.stack.base import HOST, PROBE_TIMEOUT_S
from smartcity.stack.java import JavaService
from smartcity.stack.tls import ensure_tls, tls_files

BUCKET = "smartcity"
ACCESS_KEY_SECRET = "s3-access-key"
SECRET_KEY_SECRET = "s3-secret-key"


def secrets_dir(stack_dir: Path) -> Path:
    """The folder of the secret files of the local stack."""
    return stack_dir / "secrets"


class S3Service(JavaService):
    name = "s3"
    port_settings = ("s3_port",)
    maven_project = "s3proxy"
    main_jar_prefix = "s3proxy-"
    max_heap = "256m"

    @property
    def properties_file(self) -> Path:
        return self.dir / "s3proxy.conf"

    def credentials(self) -> tuple[str, str]:
        """The access and secret keys, read from their secret files."""
        folder = secrets_dir(self.settings.stack_dir)
        return (folder / ACCESS_KEY_SECRET).read_text().strip(), (folder / SECRET_KEY_SECRET).read_text().strip()

    def _make_credentials(self) -> None:
        """Make the secret files of the keys, once (only their owner may read them)."""
        folder = secrets_dir(self.settings.stack_dir)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, value in ((ACCESS_KEY_SECRET, f"smartcity-{secrets.token_hex(4)}"), (SECRET_KEY_SECRET, secrets.token_urlsafe(30))):
            path = folder / name
            if not path.exists():
                path.touch(mode=0o600)
                path.write_text(value)

    def prepare(self) -> None:
        self._make_credentials()
        access_key, secret_key = self.credentials()
        self.data_dir.mkdir(exist_ok=True)
        self.properties_file.touch(mode=0o600)
        self.properties_file.write_text(
            self._endpoint_properties() +
            "s3proxy.authorization=aws-v2-or-v4\n"
            f"s3proxy.identity={access_key}\n"
            f"s3proxy.credential={secret_key}\n"
            "jclouds.provider=filesystem\n"
            f"jclouds.filesystem.basedir={self.data_dir}\n"
        )

    def _endpoint_properties(self) -> str:
        if not self.settings.stack_tls:
            return f"s3proxy.endpoint=http://{self.address}\n"
        files = ensure_tls(self.settings.stack_dir)
        return (f"s3proxy.secure-endpoint=https://{self.address}\n"
                f"s3proxy.keystore-path={files.keystore}\n"
                f"s3proxy.keystore-password={files.keystore_password()}\n")

    def command(self) -> list[str]:
        return self.java_command(
            "org.gaul.s3proxy.Main",
            "--properties", str(self.properties_file),
            properties={"logback.configurationFile": self.config_dir / "logback.xml"},
        )  # fmt: skip

    def _client(self):
        import urllib3
        from minio import Minio

        access_key, secret_key = self.credentials()
        tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": str(tls_files(self.settings.stack_dir).ca_cert)}
        http = urllib3.PoolManager(timeout=PROBE_TIMEOUT_S, retries=False, **(tls if self.settings.stack_tls else {}))
        return Minio(self.address, access_key=access_key, secret_key=secret_key, secure=self.settings.stack_tls,
                     http_client=http)

    def probe(self) -> bool:
        self._client().list_buckets()  # answers, and accepts our keys
        return True

    def after_start(self) -> None:
        client = self._client()
        if not client.bucket_exists(BUCKET):
            client.make_bucket(BUCKET)
