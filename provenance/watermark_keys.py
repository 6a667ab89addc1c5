"""Secret, per-installation watermark keys, held like the signing key, and the random mark ids.

The watermark's pilot pattern and payload scrambler come from a key (``provenance.watermark``).
With a key everyone knows, anyone can mark any picture with any serial; so each installation
has its own: 32 random bytes in a file outside the repository, made by ``manage.py
signing_keys_create`` (and ``--rotate``), or handed over by a KMS/HSM callback. Each key has an
id (``wk-`` and 12 hex digits, random, not derived from the key); the id, never the key, goes
into the C2PA soft-binding assertion and into messages.

A key ring is the current key (what new files are marked with) and every older one (what
files already made carry): ``verify`` reads a file with each in turn, so rotating the key
never orphans an older file.

On disk (``WatermarkKeyFiles.directory``, default ``GREENLIGHT_KEYS_DIR/watermark``):
``<id>.key`` per key (hex, mode 0600) and ``current`` naming the current id. A KMS/HSM
callback (``GREENLIGHT_WATERMARK_KEY_CALLBACK``, "package.module:function") is called with
no arguments and returns ``(current_id, {id: key_bytes})``.

The key text never appears in a repr, an error, a log line or the database: ``WatermarkKey``
keeps it out of its repr and errors name the file or the id only.

What an asset's mark carries is ``Asset.mark_id``: a random 40-bit id (``mark_id_new``), not
its row id, so a serial cannot be guessed from another asset's.
"""

from __future__ import annotations

import importlib
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance.errors import WatermarkKeyError
from provenance.watermark import ALGORITHM, SERIAL_MAX

KEY_BYTES = 32
KEY_ID_PATTERN = re.compile(r"wk-[0-9a-f]{12}")
CURRENT_FILE = "current"


def mark_id_new() -> int:
    """A random, non-zero 40-bit mark id: what an asset's watermark carries (not its row id)."""
    return secrets.randbelow(SERIAL_MAX) + 1


@dataclass(frozen=True)
class WatermarkKey:
    """One watermark key: its public id, and the secret the watermark is keyed with."""

    key_id: str
    secret: str = field(repr=False)  # the text passed to watermark_embed/read as ``key``

    def __str__(self) -> str:
        return f"watermark key {self.key_id}"


@dataclass(frozen=True)
class WatermarkKeyRing:
    """The key new files are marked with, then every older key still read."""

    current: WatermarkKey
    older: tuple[WatermarkKey, ...] = ()

    @property
    def keys(self) -> tuple[WatermarkKey, ...]:
        """Every key, current first: the order files are read with."""
        return (self.current, *self.older)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.key_id for key in self.keys)

    def by_id(self, key_id: str) -> WatermarkKey | None:
        return next((key for key in self.keys if key.key_id == key_id), None)


@dataclass(frozen=True)
class WatermarkKeyFiles:
    """Where an installation's watermark keys are: a folder of key files, or a KMS/HSM callback."""

    directory: Path
    callback: str = ""  # "package.module:function" returning (current_id, {id: key bytes})


def watermark_keys_load(files: WatermarkKeyFiles) -> WatermarkKeyRing:
    """The installation's key ring, from its callback if one is set, else from its folder.

    Raises WatermarkKeyError naming the folder, file or id (never a key) when there is no key,
    a file is unreadable or malformed, or ``current`` names a key that is not there.
    """
    if files.callback:
        return _ring_from_callback(files.callback)
    directory = files.directory
    current_path = directory / CURRENT_FILE
    if not current_path.exists():
        raise WatermarkKeyError(
            f"No watermark key in {directory} ({CURRENT_FILE} is missing): run `manage.py signing_keys_create`",
            path=directory,
        )
    current_id = _text_read(current_path).strip()
    if not KEY_ID_PATTERN.fullmatch(current_id):
        raise WatermarkKeyError(
            f"{current_path} names {current_id[:40]!r}, not a watermark key id (wk- and 12 hex digits)",
            path=current_path,
        )
    keys: dict[str, WatermarkKey] = {}
    for path in sorted(directory.glob("wk-*.key")):
        key_id = path.name.removesuffix(".key")
        if KEY_ID_PATTERN.fullmatch(key_id):
            keys[key_id] = WatermarkKey(key_id=key_id, secret=_secret_read(path))
    if current_id not in keys:
        raise WatermarkKeyError(
            f"{current_path} names watermark key {current_id}, but {directory} has no {current_id}.key",
            path=current_path,
        )
    return WatermarkKeyRing(
        current=keys.pop(current_id), older=tuple(sorted(keys.values(), key=lambda k: k.key_id, reverse=True))
    )


def watermark_key_create(directory: Path, *, make_current: bool = True) -> str:
    """Write a new random key file into ``directory`` (mode 0600) and return its id; with
    ``make_current``, new files are marked with it from now on (older keys stay readable)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    key_id = f"wk-{secrets.token_hex(6)}"
    while (directory / f"{key_id}.key").exists():  # pragma: no cover - 48 random bits
        key_id = f"wk-{secrets.token_hex(6)}"
    _private_write(directory / f"{key_id}.key", secrets.token_hex(KEY_BYTES).encode("ascii") + b"\n")
    if make_current:
        _private_write(directory / CURRENT_FILE, key_id.encode("ascii") + b"\n")
    return key_id


def watermark_keys_ensure(files: WatermarkKeyFiles) -> tuple[WatermarkKeyRing, bool]:
    """The key ring, creating a first key when the folder has none (a first install, the demo).
    Returns the ring and whether a key was created. Never creates one beside a callback."""
    if files.callback or (files.directory / CURRENT_FILE).exists():
        return watermark_keys_load(files), False
    watermark_key_create(files.directory)
    return watermark_keys_load(files), True


def soft_binding_name(key_id: str) -> str:
    """The soft-binding assertion's ``name``: the algorithm and the key id (never the key)."""
    return f"{ALGORITHM} key {key_id}"


def soft_binding_key_id(name: object) -> str | None:
    """The key id a soft-binding ``name`` written by ``soft_binding_name`` carries, if any."""
    if not isinstance(name, str):
        return None
    found = KEY_ID_PATTERN.search(name)
    return found.group(0) if found else None


# --- Helpers -----------------------------------------------------------------


def _ring_from_callback(path: str) -> WatermarkKeyRing:
    function = _callable_import(path)
    try:
        answer = function()
    except Exception as error:
        raise WatermarkKeyError(f"Watermark key callback {path} failed: {type(error).__name__}") from None
    if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[1], Mapping)):
        raise WatermarkKeyError(
            f"Watermark key callback {path} returned {type(answer).__name__}, not (current_id, {{id: key bytes}})"
        )
    current_id, material = answer
    keys: dict[str, WatermarkKey] = {}
    for key_id, secret in material.items():
        if not isinstance(key_id, str) or not KEY_ID_PATTERN.fullmatch(key_id):
            raise WatermarkKeyError(f"Watermark key callback {path} returned a key id {str(key_id)[:40]!r}")
        if not isinstance(secret, bytes | bytearray) or len(secret) < 16:
            raise WatermarkKeyError(
                f"Watermark key callback {path}: key {key_id} is not at least 16 bytes (a {type(secret).__name__})"
            )
        keys[key_id] = WatermarkKey(key_id=key_id, secret=bytes(secret).hex())
    if current_id not in keys:
        raise WatermarkKeyError(f"Watermark key callback {path} names current key {str(current_id)[:40]!r}, not given")
    current = keys.pop(current_id)
    return WatermarkKeyRing(current=current, older=tuple(sorted(keys.values(), key=lambda k: k.key_id, reverse=True)))


def _callable_import(path: str) -> Callable[[], Any]:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise WatermarkKeyError(f"Watermark key callback {path!r} is not an import path 'package.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise WatermarkKeyError(
            f"Watermark key callback {path!r} cannot be imported ({type(error).__name__})"
        ) from None
    if not callable(target):
        raise WatermarkKeyError(f"Watermark key callback {path!r} is a {type(target).__name__}, not a callable")
    function: Callable[[], Any] = target
    return function


def _text_read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise WatermarkKeyError(
            f"Watermark key file {path} cannot be read ({type(error).__name__})", path=path
        ) from None


def _secret_read(path: Path) -> str:
    text = _text_read(path).strip()
    if not re.fullmatch(r"[0-9a-f]{32,128}", text):
        # Never quote the content: it is (or is meant to be) a secret.
        raise WatermarkKeyError(
            f"Watermark key file {path} does not hold a key (32 to 128 lowercase hex digits)", path=path
        )
    return text


def _private_write(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)
