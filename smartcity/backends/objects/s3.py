"""The S3 object store (``s3://host:port/bucket[?secure=true]``), spoken with the minio client.

The bucket is the URL's path; it is created when absent. The access and secret keys are the secret files
``s3-access-key`` and ``s3-secret-key`` (never the URL), so a missing one fails at once, naming it. The
connection is plain HTTP unless the URL says ``?secure=true`` (HTTPS, the server's certificate and host name
verified, against ``SMARTCITY_TLS_CA_FILE`` when set); ``?region=`` sets the region.
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.versioningconfig import ENABLED, VersioningConfig

from smartcity.backends._url import CONNECT_TIMEOUT_S, flag, host_port, query_options, tls_ca_file, unreachable
from smartcity.backends.objects.base import check_key
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings, read_secret

ACCESS_KEY_SECRET = "s3-access-key"
SECRET_KEY_SECRET = "s3-secret-key"
_ABSENT = {"NoSuchKey", "NoSuchObject"}


class S3ObjectStore:
    def __init__(self, client: Minio, bucket: str, http: urllib3.PoolManager) -> None:
        self.client = client
        self.bucket = bucket
        self._http = http

    @classmethod
    def from_url(cls, url: str, setting: str, settings: Settings | None = None) -> S3ObjectStore:
        options = query_options(url)
        secure = flag(options, "secure", setting)
        host, port = host_port(url, setting, 443 if secure else 80)
        bucket = urlsplit(url).path.strip("/")
        if not bucket or "/" in bucket:
            raise ConfigurationError(setting, f"{url!r}: expected one bucket name as the path, s3://host:port/bucket")
        ca_file = tls_ca_file(settings) if secure else None
        http = urllib3.PoolManager(
            **({"cert_reqs": "CERT_REQUIRED", "ca_certs": ca_file} if ca_file else {}),
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=60),
            retries=urllib3.Retry(total=2, connect=0, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        )
        client = Minio(
            f"{host}:{port}",
            access_key=read_secret(ACCESS_KEY_SECRET, settings).get_secret_value(),
            secret_key=read_secret(SECRET_KEY_SECRET, settings).get_secret_value(),
            secure=secure,
            region=options.get("region"),
            http_client=http,
        )
        try:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
        except S3Error as error:
            if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise ConfigurationError(setting, f"S3 at {host}:{port} refused bucket {bucket!r}: {error.code}: {error.message}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise unreachable(setting, "S3", f"{host}:{port}", error) from None
        return cls(client, bucket, http)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(self.bucket, check_key(key), io.BytesIO(data), len(data), content_type=content_type)

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(self.bucket, check_key(key))
        except S3Error as error:
            if error.code in _ABSENT:
                raise KeyError(key) from None
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def exists(self, key: str) -> bool:
        try:
            self.client.stat_object(self.bucket, check_key(key))
            return True
        except S3Error as error:
            if error.code in _ABSENT:
                return False
            raise

    def list(self, prefix: str = "") -> list[str]:
        return sorted(item.object_name for item in self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True))

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, check_key(key))

    def enable_versioning(self) -> str:
        """Turn on the bucket's versioning (every overwrite or delete keeps the former version); what came of it.
        S3Proxy answers NotImplemented: then the bucket is left as it is and the answer says so."""
        try:
            self.client.set_bucket_versioning(self.bucket, VersioningConfig(ENABLED))
        except S3Error as error:
            if error.code == "NotImplemented":
                return f"not versioned: the server does not support it ({error.message})"
            raise
        return f"versioned ({self.client.get_bucket_versioning(self.bucket).status})"

    def close(self) -> None:
        self._http.clear()
