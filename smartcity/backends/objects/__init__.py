"""Object store backends: ``s3://`` (MinIO API through the minio client) and ``file:///`` (a local folder)."""

from smartcity.backends import load_backend
from smartcity.backends.objects.base import ObjectStore

SCHEMES = {
    "s3": "smartcity.backends.objects.s3:S3ObjectStore",
    "file": "smartcity.backends.objects.localfs:LocalObjectStore",
}


def open_objects(url: str, setting: str = "SMARTCITY_OBJECTS_URL", **options) -> ObjectStore:
    """Open the backend that the URL's scheme names; ``options`` go to its ``from_url`` (e.g. ``settings=``)."""
    return load_backend(setting, url, SCHEMES, **options)


__all__ = ["ObjectStore", "SCHEMES", "open_objects"]
