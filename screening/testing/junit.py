"""JUnit XML for CI systems: one <testsuite> per case file, one <testcase> per case.

``classname`` is the case file as the run named it, ``name`` the case name; a failing case has a
``<failure>`` whose ``message`` lists the differences in one line and whose text is the full
report (the same text ``screening test`` prints).
"""
from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from .runner import CaseResult, failure_text


def junit_tree(results: list[CaseResult], name: str = "screening test") -> ET.ElementTree:
    root = ET.Element("testsuites", name=name)
    by_file: dict[str, list[CaseResult]] = {}
    for result in results:
        by_file.setdefault(result.case.file.display, []).append(result)
    stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    host = socket.gethostname()
    total = failed = 0
    seconds = 0.0
    for display, items in by_file.items():
        suite_failures = sum(1 for r in items if not r.passed)
        suite_time = sum(r.seconds for r in items)
        suite = ET.SubElement(root, "testsuite", name=display, tests=str(len(items)), failures=str(suite_failures),
                              errors="0", skipped="0", time=f"{suite_time:.3f}", timestamp=stamp, hostname=host)
        for result in items:
            case = result.case
            testcase = ET.SubElement(suite, "testcase", classname=display, name=case.name, file=display,
                                     line=str(case.span.line), time=f"{result.seconds:.3f}")
            if not result.passed:
                failure = ET.SubElement(testcase, "failure", message=result.summary(), type="CaseFailure")
                failure.text = failure_text(result)
        total += len(items)
        failed += suite_failures
        seconds += suite_time
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", "0")
    root.set("time", f"{seconds:.3f}")
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(results: list[CaseResult], path: str | Path) -> None:
    """Write the JUnit XML report (UTF-8, with an XML declaration)."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(results).write(path, encoding="utf-8", xml_declaration=True)
