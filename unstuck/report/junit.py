"""JUnit XML from a gate result: one test case per scenario x scheduler x check.

CI systems (GitLab, Jenkins, GitHub test reporters) show JUnit natively, so each invariant of
each scenario under each scheduler becomes a named, clickable test: a `failure` when the
system deviated, an `error` when the run proved nothing (a fault never took effect, a
`sometimes` goal was never reached), `skipped` for a goal a live run cannot observe.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from unstuck.gate import ERROR, FAIL, SKIP, GateResult

# Characters XML 1.0 cannot hold, escaped or not (its `Char` production): ElementTree writes
# them as they are, and every parser then rejects the whole file.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(s: str) -> str:
    """`s` with each character XML cannot hold written as its escape (`\\x1b`). Messages
    carry free text (workspace names from a scenario's `names:` or a live system), and one
    ESC or NUL in them made the file unreadable, so CI showed no test at all."""
    return _NOT_XML.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), s)


def to_xml(gate: GateResult) -> str:
    checks = gate.checks()
    # `skipped` and `time` on every suite too: Surefire's schema requires `skipped`, and a
    # reporter may read a missing `time` as NaN (dorny/test-reporter does). `time` is 0: the
    # checks judge saved results, in no time worth reporting.
    root = ET.Element("testsuites", name="unstuck gate", tests=str(len(checks)),
                      failures=str(sum(c.status == FAIL for c in checks)),
                      errors=str(sum(c.status == ERROR for c in checks)),
                      skipped=str(sum(c.status == SKIP for c in checks)), time="0")
    for scen in dict.fromkeys(c.scenario for c in checks):
        mine = [c for c in checks if c.scenario == scen]
        suite = ET.SubElement(root, "testsuite", name=_text(scen), tests=str(len(mine)),
                              failures=str(sum(c.status == FAIL for c in mine)),
                              errors=str(sum(c.status == ERROR for c in mine)),
                              skipped=str(sum(c.status == SKIP for c in mine)), time="0")
        for c in mine:
            case = ET.SubElement(suite, "testcase", classname=_text(f"{c.scenario}.{c.scheduler}"),
                                 name=_text(c.name), time="0")
            message = _text(c.message)
            if c.status == FAIL:
                ET.SubElement(case, "failure", message=message, type="deviated").text = message
            elif c.status == ERROR:
                ET.SubElement(case, "error", message=message, type=c.why_error).text = message
            elif c.status == SKIP:
                ET.SubElement(case, "skipped", message=message)
            else:
                ET.SubElement(case, "system-out").text = message
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
