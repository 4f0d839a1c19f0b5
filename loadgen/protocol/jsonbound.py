"""A bound on how deeply a JSON message from a peer may nest (no I/O here).

orjson parses up to 1,024 levels, but the venue then meets the value in `str()`, `repr()` and
f-strings, which recurse and raised RecursionError on a 1,000-deep `txid` (issue 13's fuzzer).
No Kraken request nests deeper than 4 (`{"params": {"orders": [{"close": {...}}]}}`), so
anything past MAX_DEPTH is refused where it is parsed, by name.
"""

from __future__ import annotations

from typing import Any, Final

MAX_DEPTH: Final = 8
# No request needs more containers than a 15-order batch (~60); past this many brackets a
# message is refused unread rather than walked (a 256 KiB `[[],[],...]` is 85,000 of them).
MAX_CONTAINERS: Final = 1024


def too_deep(raw: bytes | str, value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` (parsed from `raw`) nests deeper than `limit`, or has more than
    MAX_CONTAINERS brackets in all.

    Most messages have fewer brackets than the limit in all, which no nesting can exceed: that
    count (in C) answers them; the rest are walked, without recursion."""
    text = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    brackets = text.count(b"[") + text.count(b"{")
    if brackets <= limit:
        return False
    if brackets > MAX_CONTAINERS:
        return True
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False
