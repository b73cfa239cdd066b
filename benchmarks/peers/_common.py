"""Shared bits of the peer modules: the decide signature and literal helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from benchmarks.workload import Answer, Case

Decide = Callable[[Case], Answer]


def json_list(values: Iterable[str]) -> str:
    """A sorted JSON/zen/Cedar list literal: ``["a", "b"]``."""
    return json.dumps(sorted(values))


def rego_set(values: Iterable[str]) -> str:
    """A sorted Rego set literal: ``{"a", "b"}``."""
    return "{" + ", ".join(json.dumps(v) for v in sorted(values)) + "}"


def quoted_set(values: Iterable[str]) -> str:
    """A sorted rule-engine set literal: ``{'a', 'b'}``."""
    return "{" + ", ".join(f"'{v}'" for v in sorted(values)) + "}"
