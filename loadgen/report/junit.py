"""junit.xml: one test case per SLO, a failure naming the breached ones (for CI dashboards),
and one that the run was a valid measurement at all: an error naming every reason when it
was not (report/verdict), so a CI dashboard never shows an invalid run as green."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET


def xml(summary: dict[str, Any]) -> str:
    verdicts = summary["slo"]
    failures = [v for v in verdicts if not v["ok"]]
    verdict = summary["verdict"]
    invalid = verdict["status"] == "invalid"
    suite = ET.Element(
        "testsuite",
        name=f"loadgen {summary['run']['profile'] or 'run'}",
        tests=str(len(verdicts) + 1),
        failures=str(len(failures)),
        errors=str(int(invalid)),
        time=f"{summary['run']['seconds']:.0f}",
    )
    case = ET.SubElement(suite, "testcase", classname="loadgen.run", name="valid measurement")
    if invalid:
        error = ET.SubElement(
            case, "error", message="INVALID MEASUREMENT: "
            + "; ".join(r["text"] for r in verdict["reasons"]),
            type=",".join(r["code"] for r in verdict["reasons"]),
        )  # fmt: skip
        error.text = verdict.get("headline", "")
    for v in verdicts:
        case = ET.SubElement(suite, "testcase", classname="loadgen.slo", name=v["name"])
        if not v["ok"]:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"SLO breached: {v['name']} = {v['measured']}, limit {v['limit']}",
            )
            failure.text = "; ".join(summary["findings"])
    md = summary.get("market_data")
    if md:  # the MarketDataUsers' figures, for a dashboard that graphs properties
        props = ET.Element("properties")
        suite.insert(0, props)  # JUnit's schema puts them first
        for name in ("updates", "checksum_failures", "resubscribes", "reconnects", "trades",
                     "sequence_gaps", "tickers"):  # fmt: skip
            ET.SubElement(props, "property", name=f"market_data.{name}",
                          value=str(md.get(name, 0)))  # fmt: skip
        for name, us in md["fanout_us"].items():
            ET.SubElement(props, "property", name=f"market_data.fanout_{name}_us", value=str(us))
    out = ET.SubElement(suite, "system-out")
    out.text = "\n".join(summary["findings"])
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
