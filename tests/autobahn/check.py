#!/usr/bin/env python3
"""Judges an Autobahn|Testsuite client report (the fuzzing server's index.json).

    python3 tests/autobahn/check.py REPORT_DIR_OR_INDEX_JSON [--agent wsembed]
                                    [--markdown FILE] [--expect-cases N]
                                    [--expect-deflate]

A case passes when its `behavior` is OK, NON-STRICT or INFORMATIONAL and its
`behaviorClose` is OK. One exception: a case the suite declares wholly
informational (behavior and behaviorClose both INFORMATIONAL) passes. The
suite sets both unconditionally, whatever the client does, in exactly three
cases (7.1.6, 7.13.1, 7.13.2: "implementation defined" / "undefined by the
spec"), so no client could ever pass them otherwise; what happened in them is
printed. Cases 12.* and 13.* (permessage-deflate) are judged like every
other case with --expect-deflate (run.sh passes it: its client offers the
extension); without it they must be UNIMPLEMENTED, as for a client that
offers no compression.

Prints a Markdown table per section (cases, OK, non-strict, informational,
unimplemented, failed), then every failing case with what the suite expected
and what happened, read from the case's own JSON report. Exits 1 when any
case failed or the report is missing or empty, 0 otherwise.
"""

import argparse
import json
import os
import sys

PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}
DEFLATE_SECTIONS = {"12", "13"}

SECTIONS = {
    "1": "Framing",
    "2": "Pings/Pongs",
    "3": "Reserved Bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 Handling",
    "7": "Close Handling",
    "9": "Limits/Performance",
    "10": "Misc",
    "12": "WebSocket Compression (different payloads)",
    "13": "WebSocket Compression (different parameters)",
}

COLUMNS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]


def case_key(case_id):
    return tuple(int(p) if p.isdigit() else p for p in case_id.split("."))


def verdict(case_id, result, expect_deflate):
    """The column a case counts in, and why it failed (None if it passed)."""
    behavior = result.get("behavior")
    close = result.get("behaviorClose")
    section = case_id.split(".")[0]
    if section in DEFLATE_SECTIONS and not expect_deflate:
        if behavior == "UNIMPLEMENTED":
            return "UNIMPLEMENTED", None
        return "FAILED", (
            "expected UNIMPLEMENTED (no permessage-deflate), got behavior %s / close %s; "
            "if compression now exists, run with --expect-deflate" % (behavior, close)
        )
    if behavior not in PASSING:
        return "FAILED", "behavior %s (close %s)" % (behavior, close)
    if close != "OK" and not (behavior == "INFORMATIONAL" and close == "INFORMATIONAL"):
        return "FAILED", "behaviorClose %s (behavior %s)" % (close, behavior)
    return behavior, None


def load_case(report_dir, result):
    name = result.get("reportfile")
    if not name:
        return {}
    try:
        with open(os.path.join(report_dir, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def shorten(value, limit=300):
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", help="the report directory, or its index.json")
    parser.add_argument("--agent", default="wsembed")
    parser.add_argument("--markdown", help="also write the summary table to this file")
    parser.add_argument("--expect-cases", type=int,
                        help="fail unless the report holds exactly this many cases")
    parser.add_argument("--expect-deflate", action="store_true",
                        help="judge 12.* and 13.* like the other cases")
    args = parser.parse_args()

    index_path = args.report
    if os.path.isdir(index_path):
        index_path = os.path.join(index_path, "index.json")
    report_dir = os.path.dirname(os.path.abspath(index_path))
    try:
        with open(index_path) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print("FAIL: cannot read the report %s: %s" % (index_path, e))
        return 1
    results = index.get(args.agent)
    if not results:
        print("FAIL: no results for agent %r in %s (agents: %s)"
              % (args.agent, index_path, ", ".join(sorted(index)) or "none"))
        return 1

    if args.expect_cases is not None and len(results) != args.expect_cases:
        print("FAIL: the report holds %d cases, the server announced %d"
              % (len(results), args.expect_cases))
        return 1

    counts = {}      # section -> column -> n
    failures = []    # (case id, reason, result)
    by_column = {c: [] for c in COLUMNS}
    for case_id in sorted(results, key=case_key):
        result = results[case_id]
        section = case_id.split(".")[0]
        column, reason = verdict(case_id, result, args.expect_deflate)
        row = counts.setdefault(section, {c: 0 for c in COLUMNS})
        row[column] += 1
        by_column[column].append(case_id)
        if reason:
            failures.append((case_id, reason, result))

    header = "| section | cases | OK | non-strict | informational | unimplemented | failed |"
    lines = [header, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    totals = {c: 0 for c in COLUMNS}
    for section in sorted(counts, key=int):
        row = counts[section]
        n = sum(row.values())
        name = SECTIONS.get(section, "")
        label = "%s %s" % (section, name) if name else section
        lines.append("| %s | %d | %s |" % (label, n, " | ".join(str(row[c]) for c in COLUMNS)))
        for c in COLUMNS:
            totals[c] += row[c]
    lines.append("| **all** | **%d** | %s |" % (
        sum(totals.values()), " | ".join("**%d**" % totals[c] for c in COLUMNS)))
    table = "\n".join(lines)

    print("Autobahn|Testsuite, client mode, agent %s (%s)\n" % (args.agent, index_path))
    print(table)
    print()
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")

    for column, label in (("NON-STRICT", "non-strict"), ("INFORMATIONAL", "informational")):
        if by_column[column]:
            print("%s (passed; what the suite saw):" % label)
            for case_id in by_column[column]:
                detail = load_case(report_dir, results[case_id])
                if column == "NON-STRICT":
                    # The suite's result text says nothing; the events do.
                    print("  %-8s strict expectation %s, client gave %s" % (
                        case_id, shorten((detail.get("expected") or {}).get("OK", "?"), 70),
                        shorten(detail.get("received", "?"), 70)))
                else:
                    print("  %-8s %s" % (case_id, shorten(detail.get("result", "?"), 160)))
    ids = by_column["UNIMPLEMENTED"]
    if ids:
        shown = ", ".join(ids) if len(ids) <= 20 else (
            "%s ... %s" % (", ".join(ids[:3]), ", ".join(ids[-2:])))
        print("unimplemented (permessage-deflate, not offered): %d cases: %s" % (len(ids), shown))

    if failures:
        print("\n%d FAILED case(s):" % len(failures))
        for case_id, reason, result in failures:
            detail = load_case(report_dir, result)
            print("\n- %s: %s" % (case_id, reason))
            for key in ("description", "expectation", "result", "resultClose"):
                if detail.get(key):
                    print("    %-12s %s" % (key + ":", shorten(detail[key])))
            if detail:
                print("    %-12s %s, remote close code %s, wasClean %s, %s" % (
                    "close:", "closed by server" if detail.get("closedByMe") else "closed by client",
                    detail.get("remoteCloseCode"), detail.get("wasClean"),
                    detail.get("wasNotCleanReason") or "-"))
                if detail.get("received"):
                    print("    %-12s %s" % ("received:", shorten(detail["received"], 200)))
            print("    %-12s %s" % ("report:", os.path.join(report_dir, result.get("reportfile", "?"))))
        passed = sum(totals.values()) - len(failures)
        print("\nautobahn: %d passed, %d failed" % (passed, len(failures)))
        return 1

    print("\nautobahn: %d passed, 0 failed" % sum(totals.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
