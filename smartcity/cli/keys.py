"""``smartcity keys``: the keyring that encrypts raw archives, backups and model artifacts at rest.

Rotation, step by step: ``smartcity keys add`` (a new key; it encrypts from now on, the old ones still decrypt),
``smartcity keys rotate`` (every object's data key re-wrapped with the new key), then ``smartcity keys remove
OLD-ID``. See docs/security.md, "Encryption at rest".
"""

from __future__ import annotations

import typer
from rich.console import Console

from smartcity.errors import ConfigurationError
from smartcity.settings import get_settings

app = typer.Typer(help="Keys of the encryption at rest (secret encryption-keyring): add, list, rotate, remove.",
                  no_args_is_help=True)
console = Console()
# What is encrypted, by store: (setting of the store's URL, key prefixes).
ENCRYPTED = {"SMARTCITY_OBJECTS_URL": ["raw/", "models/"], "SMARTCITY_BACKUP_URL": ["backups/"]}


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _keyring():
    from smartcity.storage.encryption import load_keyring

    try:
        keyring = load_keyring(get_settings())
    except ConfigurationError as error:
        _fail(str(error))
    if keyring is None:
        _fail("no keyring: the secret encryption-keyring is missing (`smartcity keys add` makes one)")
    return keyring


@app.command("add")
def add() -> None:
    """Add a new key (making the keyring if missing); it encrypts from now on, the others still decrypt."""
    from smartcity.storage.encryption import Keyring, load_keyring, save_keyring

    settings = get_settings()
    try:
        keyring = (load_keyring(settings) or Keyring({})).with_new_key()
    except ConfigurationError as error:
        _fail(str(error))
    path = save_keyring(settings, keyring)
    console.print(f"added key {keyring.current} to {path} ({len(keyring.keys)} key(s))")


@app.command("list")
def list_keys() -> None:
    """The key ids, the one that encrypts last (no key material is printed)."""
    keyring = _keyring()
    for kid in keyring.keys:
        typer.echo(f"{kid}{'  (encrypts)' if kid == keyring.current else ''}")


@app.command("rotate")
def rotate() -> None:
    """Re-wrap every archive, model artifact and backup with the newest key (plaintext ones get encrypted)."""
    from smartcity.backends.objects import open_objects
    from smartcity.storage.encryption import EncryptionError, rotate as rotate_objects

    settings, keyring = get_settings(), _keyring()
    urls = {"SMARTCITY_OBJECTS_URL": settings.objects_url, "SMARTCITY_BACKUP_URL": settings.backup_url}
    for setting, prefixes in ENCRYPTED.items():
        objects = open_objects(urls[setting], setting, settings=settings)
        try:
            counts = rotate_objects(objects, keyring, prefixes)
        except EncryptionError as error:
            _fail(str(error))
        finally:
            objects.close()
        console.print(f"{setting} ({', '.join(prefixes)}): {counts['rewrapped']} re-wrapped, {counts['encrypted']} "
                      f"encrypted, {counts['current']} already with {keyring.current}")


@app.command("remove")
def remove(key_id: str = typer.Argument(..., help="The id of the key to remove (see `smartcity keys list`).")) -> None:
    """Remove a key: objects still wrapped with it become unreadable, so run `smartcity keys rotate` first."""
    from smartcity.storage.encryption import save_keyring

    try:
        keyring = _keyring().without(key_id)
    except ConfigurationError as error:
        _fail(str(error))
    save_keyring(get_settings(), keyring)
    console.print(f"removed key {key_id}; {keyring.current} encrypts")
