"""JUnit XML from a gate result: one test case per scenario x scheduler x check.

CI systems (GitLab, Jenkins, GitHub test reporters) show JUnit natively, so each invariant of
each scenario under each scheduler becomes a named, clickable test: a `failure` when the
system deviated, an `error` when the run proved nothing (a fault never took effect).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from unstuck.gate import ERROR, FAIL, GateResult


def to_xml(gate: GateResult) -> str:
    checks = gate.checks()
    root = ET.Element("testsuites", name="unstuck gate", tests=str(len(checks)),
                      failures=str(sum(c.status == FAIL for c in checks)),
                      errors=str(sum(c.status == ERROR for c in checks)))
    for scen in dict.fromkeys(c.scenario for c in checks):
        mine = [c for c in checks if c.scenario == scen]
        suite = ET.SubElement(root, "testsuite", name=scen, tests=str(len(mine)),
                              failures=str(sum(c.status == FAIL for c in mine)),
                              errors=str(sum(c.status == ERROR for c in mine)))
        for c in mine:
            case = ET.SubElement(suite, "testcase", classname=f"{c.scenario}.{c.scheduler}",
                                 name=c.name, time="0")
            if c.status == FAIL:
                ET.SubElement(case, "failure", message=c.message, type="deviated").text = c.message
            elif c.status == ERROR:
                ET.SubElement(case, "error", message=c.message, type="fault-never-took-effect").text = c.message
            else:
                ET.SubElement(case, "system-out").text = c.message
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
