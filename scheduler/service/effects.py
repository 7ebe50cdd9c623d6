"""Which announced fault a pod deletion the Kubernetes watch saw is the effect of.

The simulation knows why each of its pods went. A live observer sees only that one went, and
an `hpa-scale-down` names no pod: the ReplicaSet takes one after the HPA's next sync. So
without this a live HPA experiment hit nobody, and its run could measure no recovery and
prove no `gates.sometimes` goal. What the service does know: the faults a harness announced
(`POST /faults`) and has not ended yet (`POST /faults/end`), and the pods the scheduler
deleted itself (its `pod.delete` rows). A deletion the scheduler did not make, of a pod no
fault names (a pod-kill's own pod, a lost node's pods), while an untargeted fault is in
force, is that fault's effect: its `pod.terminating` row names it in `data.fault`, as the
simulation's ReplicaSet deletions do (docs/metrics.md, "Effects").

The faults in force are also what `Engine.end_fault` ends: a `fault.end` row ends the oldest
alike one, here as when the checker reads the history back. Everything here is rebuilt from
the history rows alone, so a restarted service names the same causes as one that ran on.
"""

from __future__ import annotations

from typing import Any

# Faults with no pod of their own, which hit through deletions others make. The seed's
# pool-scale-down (its own autoscaler's deletions) is not here: live, those are the
# scheduler's `pod.delete`s, which are never an effect.
UNTARGETED = frozenset({"hpa-scale-down"})

Row = dict[str, Any]


def fields(row: Row) -> tuple:
    """What a `fault.end` repeats of its `fault` row, and so what matches the two: alike
    faults are interchangeable, and the oldest alike one in force is the one that ends, as
    the checker reads a simulated history's ends."""
    data = row.get("data") or {}
    return (row.get("pod"), row.get("agent"), row.get("task"), tuple(sorted(data.items())))


class Effects:
    def __init__(self) -> None:
        self.in_force: dict[int, Row] = {}  # seq -> a fault row not yet ended
        self.deleted_by_scheduler: set[str] = set()
        self.named: set[str] = set()  # pods a fault row names: that fault's own
        self.lost_nodes: set[str] = set()  # nodes a node-loss names: their pods are its own
        self.attributed: set[str] = set()  # pods whose first deletion row was written

    def observe(self, row: Row) -> None:
        kind = row["kind"]
        if kind == "fault":
            self.in_force[row["seq"]] = row
            if row.get("pod"):
                self.named.add(row["pod"])
            data = row.get("data") or {}
            if data.get("type") == "node-loss" and data.get("node"):
                self.lost_nodes.add(data["node"])
        elif kind == "fault.end":
            ended = self.match(row)
            if ended is not None:
                del self.in_force[ended]
        elif kind == "pod.delete" and row.get("pod"):
            self.deleted_by_scheduler.add(row["pod"])
        elif kind in ("pod.terminating", "pod.removed") and row.get("pod"):
            self.attributed.add(row["pod"])

    def match(self, end: Row) -> int | None:
        """The seq of the oldest fault in force that `end` (a `fault.end` row, or the fields
        of one about to be written) ends, or None."""
        want = fields(end)
        return next((seq for seq, row in self.in_force.items() if fields(row) == want), None)

    def cause(self, pod: str, node: str | None) -> int | None:
        """The seq of the fault whose effect the deletion of `pod` (on `node`) is: the newest
        untargeted one in force, unless the scheduler deleted the pod, a fault names it or its
        node, or its deletion was already recorded (a `pod.removed` after its
        `pod.terminating` names nothing again: one deletion, one hit)."""
        if (pod in self.deleted_by_scheduler or pod in self.named or pod in self.attributed
                or (node is not None and node in self.lost_nodes)):
            return None
        seqs = [seq for seq, row in self.in_force.items()
                if (row.get("data") or {}).get("type") in UNTARGETED]
        return max(seqs) if seqs else None
