"""Bearer tokens with scopes, from the operator's JSON file, compared in constant time.

The file: `{"tokens": [{"name": "...", "token": "...", "scopes": ["decide", "log", "admin"]}]}`.
Tokens are kept only as SHA-256 digests and every presented token is compared with every
configured one (`hmac.compare_digest`, no early exit), so timing says nothing about which
token or how much of it matched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SCOPES", "Token", "TokenError", "Tokens", "load_tokens"]

SCOPES = ("decide", "log", "admin")
MIN_TOKEN_LENGTH = 16


class TokenError(Exception):
    """The tokens file is missing or malformed: the message names the field."""


@dataclass(frozen=True)
class Token:
    name: str
    digest: bytes
    scopes: frozenset[str]


class Tokens:
    """The configured tokens; `authenticate` finds the caller of a request."""

    def __init__(self, tokens: list[Token], warnings: list[str] | None = None):
        self.tokens = tokens
        self.warnings = warnings or []

    def authenticate(self, header: str | None) -> Token | None:
        """The token an `Authorization: Bearer ...` header presents, or None."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        digest = hashlib.sha256(value.strip().encode("utf-8")).digest()
        found = None
        for token in self.tokens:  # no early exit: constant time in which token matched
            if hmac.compare_digest(digest, token.digest):
                found = token
        return found


def load_tokens(path: Path) -> Tokens:
    """Read and validate the tokens file; every problem is reported with its field path."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenError(f"cannot read the tokens file `{path}`: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TokenError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
    problems: list[str] = []
    tokens = _parse(data, problems)
    if problems:
        raise TokenError(f"{path}: " + f"\n{path}: ".join(problems))
    warnings = []
    try:
        if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(f"{path} is readable by other users: chmod 600 it")
    except OSError:
        pass
    return Tokens(tokens, warnings)


def _parse(data: Any, problems: list[str]) -> list[Token]:
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
        problems.append('expected {"tokens": [{"name": ..., "token": ..., "scopes": [...]}]}')
        return []
    tokens: list[Token] = []
    seen_names: set[str] = set()
    seen_digests: set[bytes] = set()
    for index, entry in enumerate(data["tokens"]):
        where = f"tokens[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected an object with name, token and scopes")
            continue
        unknown = sorted(set(entry) - {"name", "token", "scopes"})
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(unknown)}")
        name, secret, scopes = entry.get("name"), entry.get("token"), entry.get("scopes")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.name: a non-empty string naming who uses the token")
            name = f"#{index}"
        elif name in seen_names:
            problems.append(f"{where}.name: `{name}` is used twice")
        if not isinstance(secret, str) or len(secret) < MIN_TOKEN_LENGTH:
            problems.append(
                f"{where}.token: a string of at least {MIN_TOKEN_LENGTH} characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
            continue
        digest = hashlib.sha256(secret.encode("utf-8")).digest()
        if digest in seen_digests:
            problems.append(f"{where}.token: the same token is configured twice")
        if not isinstance(scopes, list) or not scopes:
            problems.append(f"{where}.scopes: a non-empty list of {', '.join(SCOPES)}")
            continue
        bad = [s for s in scopes if s not in SCOPES]
        if bad:
            problems.append(f"{where}.scopes: unknown scope(s) {bad}; choose from {', '.join(SCOPES)}")
            continue
        seen_names.add(name)
        seen_digests.add(digest)
        tokens.append(Token(name, digest, frozenset(scopes)))
    if not tokens and not problems:
        problems.append("tokens: no token configured; no token, no decision")
    return tokens
