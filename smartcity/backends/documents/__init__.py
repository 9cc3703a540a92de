"""Document store backends: ``mongodb://`` (pymongo; MongoDB or FerretDB) and ``embedded:///`` (SQLite JSON)."""

from smartcity.backends import load_backend
from smartcity.backends.documents.base import Document, DocumentStore

SCHEMES = {
    "mongodb": "smartcity.backends.documents.mongodb:MongoDocumentStore",
    "embedded": "smartcity.backends.documents.embedded:EmbeddedDocumentStore",
}


def open_documents(url: str, setting: str = "SMARTCITY_DOCUMENTS_URL", **options) -> DocumentStore:
    """Open the backend that the URL's scheme names; ``options`` go to its ``from_url`` (e.g. ``settings=``)."""
    return load_backend(setting, url, SCHEMES, **options)


__all__ = ["Document", "DocumentStore", "SCHEMES", "open_documents"]
