#!/usr/bin/env python3
"""Check a decision-log inclusion proof on its own: no project code, only the standard library.

    python3 tools/verify_inclusion.py PROOF.json [--public-key KEY.pem]

PROOF.json is what `policy log proof LOG DECISION_ID` (or GET /v1/log/proof/ID) writes. This
script recomputes the record's RFC 6962 leaf hash from its exact bytes, walks the audit path
(RFC 9162 section 2.1.3.2) to a root, and compares it with the root of the signed checkpoint.
With --public-key (the log's Ed25519 key, PEM) it also checks the checkpoint's signature; that
needs the `cryptography` package, and is skipped with a notice if it is missing.
Exit status: 0 proven, 1 not proven, 2 unreadable input.
"""

import argparse
import base64
import hashlib
import json
import sys


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(leaf: bytes, index: int, size: int, path: list) -> bytes | None:
    """RFC 9162 2.1.3.2: the root the audit path leads to, or None if the path is malformed."""
    if not 0 <= index < size:
        return None
    fn, sn, digest = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            digest = node_hash(digest, sibling)
        fn >>= 1
        sn >>= 1
    return digest if sn == 0 else None


def signed_bytes(checkpoint: dict) -> bytes:
    """The checkpoint fields the log signs: compact JSON, keys sorted, UTF-8."""
    fields = {k: v for k, v in checkpoint.items() if k != "signature"}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_signature(checkpoint: dict, key_file: str) -> str:
    """'ok', 'bad' or 'skipped' (no cryptography package)."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError:
        return "skipped"
    with open(key_file, "rb") as handle:
        key = load_pem_public_key(handle.read())
    try:
        key.verify(base64.b64decode(checkpoint["signature"]), signed_bytes(checkpoint))
    except (InvalidSignature, ValueError, TypeError):
        return "bad"
    return "ok"


def main() -> int:
    parser = argparse.ArgumentParser(description="Verify a decision-log inclusion proof.")
    parser.add_argument("proof", help="the proof JSON file")
    parser.add_argument("--public-key", help="the log's Ed25519 public key (PEM), to check the checkpoint's signature")
    args = parser.parse_args()
    try:
        with open(args.proof, encoding="utf-8") as handle:
            proof = json.load(handle)
        record = proof["record"].encode("utf-8")
        index, size = int(proof["leaf_index"]), int(proof["tree_size"])
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        checkpoint = proof["checkpoint"]
        root = bytes.fromhex(checkpoint["root"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: cannot read the proof `{args.proof}`: {exc}", file=sys.stderr)
        return 2
    problems = []
    if int(checkpoint.get("size", -1)) != size:
        problems.append(f"the proof is for a tree of {size} records, the checkpoint covers {checkpoint.get('size')}")
    claimed = json.loads(record).get("decision_id")
    if claimed != proof.get("decision_id"):
        problems.append(f"the record is decision {claimed}, not {proof.get('decision_id')}")
    computed = root_from_path(leaf_hash(record), index, size, path)
    if computed != root:
        problems.append("the audit path does not lead to the checkpoint's root")
    signature = "not checked (give --public-key)"
    if args.public_key:
        outcome = check_signature(checkpoint, args.public_key)
        if outcome == "bad":
            problems.append("the checkpoint's signature does not verify with that key")
        signature = {"ok": "valid", "bad": "INVALID", "skipped": "not checked (install cryptography)"}[outcome]
    for problem in problems:
        print(f"NOT PROVEN: {problem}")
    if problems:
        return 1
    print(f"proven: decision {claimed} is record #{index} of the {size} records the checkpoint of "
          f"{checkpoint.get('time')} covers (root {root.hex()[:16]}...); signature: {signature}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
