"""The report's rate-limit section: what the conformance shadow (conformance.py) concluded.

From the windows' `limits`: decisions by class, by protocol and operation; the shadow counter
of the busiest keys over time against the published threshold; the first divergence with the
requests that led to it; the venue's edges (the lowest counter it refused at, the highest it
accepted at, as the published model counts); and a verdict per tier.
"""

from __future__ import annotations

import time
from typing import Any

from loadgen.conformance import AMBIGUOUS, DECISIONS, FALSE_REJECT, MISSED_REJECT, verdict
from loadgen.metrics.recorder import Limits, Window
from loadgen.ratelimit import TIERS

CHART_KEYS = 8  # shadow counters drawn: the keys/pairs that came closest to the threshold


def conformance(windows: list[Window], meta: dict[str, Any]) -> dict[str, Any] | None:
    """The rate-limit section of summary.json; None when nothing was checked."""
    checked = [w for w in windows if w.limits is not None]
    if not checked:
        return None
    tier = str(meta.get("tier") or "")
    threshold = TIERS[tier].trade_threshold if tier in TIERS else None
    total = Limits()  # the run's decisions, edges and peak counters, merged as windows merge
    divergences: list[dict[str, Any]] = []  # all of them (a merged Limits keeps the first few)
    for w in checked:
        assert w.limits is not None
        total.add(w.limits)
        divergences.extend(w.limits.divergences)
    classes = dict.fromkeys(DECISIONS, 0)
    by_op: dict[str, dict[str, int]] = {}
    for key, n in total.decisions.items():
        where, _, cls = key.rpartition("/")
        classes[cls] = classes.get(cls, 0) + n
        row = by_op.setdefault(where, dict.fromkeys(DECISIONS, 0))
        row[cls] = row.get(cls, 0) + n
    peaks = total.counters
    divergences.sort(key=lambda d: d["t"])
    decided = sum(classes.values())
    chosen = sorted(peaks, key=lambda n: -peaks[n])[:CHART_KEYS]
    counters = {
        "t": [w.t for w in checked],
        "keys": {n: [w.limits.counters.get(n) for w in checked] for n in sorted(chosen)},  # type: ignore[union-attr]
    }
    result = verdict(classes[FALSE_REJECT], classes[MISSED_REJECT])
    return {
        "tier": tier,
        "threshold": threshold,
        "decisions": decided,
        "classes": classes,
        "ambiguous_share": classes[AMBIGUOUS] / decided if decided else 0.0,
        "by_operation": [{"where": k, **v} for k, v in sorted(by_op.items())],
        "verdict": result,
        "verdicts": {tier or "?": result},
        "first_divergence": divergences[0] if divergences else None,
        "divergences_kept": len(divergences),
        "refused_min": total.refused_min,
        "accepted_max": total.accepted_max,
        "counters": counters,
    }


def judge(section: dict[str, Any] | None, slo: dict[str, Any]) -> dict[str, Any] | None:
    """The profile's expected verdict (slo.rate_limit_verdict) against the measured one."""
    expected = slo.get("rate_limit_verdict")
    if not expected:
        return None
    got = section["verdict"] if section else "unchecked"
    classes = section["classes"] if section else {}
    diverged = classes.get(FALSE_REJECT, 0) + classes.get(MISSED_REJECT, 0)
    return {
        "name": "rate-limit verdict",
        "kind": "conformance",
        "limit": expected,
        "measured": f"{got} ({diverged} divergences)",
        "ok": got == expected,
    }


def finding(section: dict[str, Any] | None) -> str | None:
    if section is None:
        return None
    c = section["classes"]
    tier = section["tier"] or "the named"
    threshold = section["threshold"]
    head = (
        f"Rate limits: {section['decisions']:,} decisions held against the published {tier} "
        f"limits (threshold {threshold:g}): {c['agreed']:,} agreed, {c[FALSE_REJECT]:,} false "
        f"rejects, {c[MISSED_REJECT]:,} missed rejects, {c[AMBIGUOUS]:,} too close to call."
    )
    v = section["verdict"]
    if v == "conforms":
        return head + " The venue conforms."
    first = section["first_divergence"]
    words = {
        "too_strict": "refuses what the published limits allow",
        "too_lenient": "accepts what the published limits refuse",
        "both": "both refuses what the limits allow and accepts what they refuse",
    }[v]
    edges = []
    if section["refused_min"] is not None and section["refused_min"] <= threshold:
        edges.append(f"it refused at a counter of {section['refused_min']:g}")
    if section["accepted_max"] is not None and section["accepted_max"] > threshold:
        edges.append(f"it accepted at {section['accepted_max']:g}")
    where = ""
    if first:
        stamp = time.strftime("%H:%M:%S", time.localtime(first["t"]))
        frac = f"{first['t'] % 1:.3f}"[1:]
        where = (
            f" First divergence at {stamp}{frac}: a {first['protocol']} {first['op']} on "
            f"{first['key']}/{first['pair']} ({first['class'].replace('_', ' ')}; the published "
            f"counter would reach {first['reach'][0]:g}..{first['reach'][1]:g})."
        )
    return f"{head} The venue {words}" + (f" ({'; '.join(edges)})" if edges else "") + f".{where}"
