"""Signed checkpoints: (size, Merkle root, chain head) of the log, signed with Ed25519, kept outside it.

A checkpoint says "this log held exactly these N records"; anyone with the public key can
check that a log (or one record's inclusion proof) agrees. They are appended, one JSON object
per line, to `checkpoints.jsonl` in a folder outside the database (fsynced), and the newest is
also `latest.json`. Copy that folder somewhere the database's administrators cannot write:
a checkpoint only proves what happened before it was copied out of their reach.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.decisionlog.records import compact
from engine.decisionlog.store import LogError

__all__ = [
    "CHECKPOINTS_FILE",
    "LATEST_FILE",
    "PUBLIC_KEY_FILE",
    "Checkpoint",
    "CheckpointWriter",
    "Signer",
    "load_public_key",
    "read_checkpoints",
    "verify_signature",
]

CHECKPOINTS_FILE = "checkpoints.jsonl"
LATEST_FILE = "latest.json"
PUBLIC_KEY_FILE = "public-key.pem"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement about the log's first `size` records."""

    log_id: str
    size: int
    root: str
    chain_head: str
    time: str
    key_id: str
    signature: str

    def signed_part(self) -> dict[str, Any]:
        return {
            "checkpoint_version": CHECKPOINT_VERSION,
            "log_id": self.log_id,
            "size": self.size,
            "root": self.root,
            "chain_head": self.chain_head,
            "time": self.time,
            "key_id": self.key_id,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.signed_part(), "signature": self.signature}

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        if not isinstance(data, dict):
            raise ValueError("a checkpoint is a JSON object")
        try:
            return cls(
                log_id=str(data["log_id"]),
                size=int(data["size"]),
                root=str(data["root"]),
                chain_head=str(data["chain_head"]),
                time=str(data["time"]),
                key_id=str(data["key_id"]),
                signature=str(data["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a checkpoint: {exc}") from None


def _key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


class Signer:
    """The log's Ed25519 signing key, read from (or created in) a PEM file readable only by its owner."""

    def __init__(self, path: Path, *, create: bool = True):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.path = path
        if path.exists():
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (ValueError, TypeError, OSError) as exc:
                raise LogError(
                    f"cannot read the signing key `{path}`: {exc}", "give an Ed25519 PEM key"
                ) from None
            if not isinstance(key, Ed25519PrivateKey):
                raise LogError(f"`{path}` is not an Ed25519 key", "the log signs with Ed25519")
        elif create:
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
        else:
            raise LogError(
                f"no signing key at `{path}`", "give --signing-key FILE (the key the service signs with)"
            )
        self._key = key
        public = key.public_key()
        self.public_raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = _key_id(self.public_raw)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message)).decode("ascii")

    def checkpoint(self, log_id: str, size: int, root: bytes, chain_head: bytes, time: str) -> Checkpoint:
        unsigned = Checkpoint(log_id, size, root.hex(), chain_head.hex(), time, self.key_id, "")
        return Checkpoint(**{**unsigned.__dict__, "signature": self.sign(compact(unsigned.signed_part()))})


def load_public_key(path: Path) -> Any:
    """An Ed25519 public key from a PEM file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, OSError) as exc:
        raise LogError(
            f"cannot read the public key `{path}`: {exc}", "give the PEM file the service exported"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise LogError(f"`{path}` is not an Ed25519 public key")
    return key


def verify_signature(public_key: Any, message: bytes, signature: str) -> bool:
    """Whether `signature` (base64) is the key's signature of `message`."""
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_id(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return _key_id(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


class CheckpointWriter:
    """Appends signed checkpoints to a folder, durably (fsync of the file and, for `latest.json`, the folder)."""

    def __init__(self, folder: Path, signer: Signer):
        self.folder = folder
        self.signer = signer
        folder.mkdir(parents=True, exist_ok=True)
        public = folder / PUBLIC_KEY_FILE
        if not public.exists() or public.read_bytes() != signer.public_pem:
            _atomic_write(public, signer.public_pem)

    def write(self, checkpoint: Checkpoint) -> None:
        line = json.dumps(checkpoint.to_json(), sort_keys=True) + "\n"
        descriptor = os.open(self.folder / CHECKPOINTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line.encode("ascii"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        _atomic_write(self.folder / LATEST_FILE, line.encode("ascii"))


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file, fsync, rename over, fsync the folder: readers see old or new, never half."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_checkpoints(folder: Path) -> tuple[list[Checkpoint], list[str], list[str]]:
    """Every checkpoint in the folder in file order, errors (unreadable lines) and warnings.

    A last line without its newline is what a crash mid-write leaves; it is skipped with a
    warning, not treated as tampering.
    """
    path = folder / CHECKPOINTS_FILE
    if not path.exists():
        return [], [], []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    problems: list[str] = []
    warnings: list[str] = []
    found = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if number == len(lines):  # unterminated last line
            warnings.append(f"{path}:{number}: unfinished last line skipped (a crash while writing)")
            continue
        try:
            found.append(Checkpoint.from_json(json.loads(line)))
        except ValueError as exc:
            problems.append(f"{path}:{number}: {exc}")
    return found, problems, warnings
