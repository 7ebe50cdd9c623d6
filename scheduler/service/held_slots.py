"""The slots a live run's history shows held, read back from the log at a restart.

The seed variants keep their slots in memory only (F5), and say so at a restart with one
`slot.released` row per slot their memory lost. In the simulation the policy object, memory
and all, lives on across a restart, so it can tell. A live restart is a new process with no
memory: without this, its history would go on showing the old process's slots held, and the
checker would count a later kill of such a pod as a hit on a task that lost its slot at the
restart. So the service replays its log through this ledger and hands what it holds to the
core with the `Restart` (`events.Restart.held_slots`); a variant whose slots survive a
restart (the reference keeps reservations in the store) ignores it."""

from __future__ import annotations

from typing import Any

from scheduler.events import HeldSlot

TAKES = {"slot.assigned": "running", "slot.reserved": "reserved"}


class HeldSlots:
    def __init__(self) -> None:
        self.slots: dict[tuple[str, int | None], HeldSlot] = {}

    def observe(self, row: dict[str, Any]) -> None:
        kind, pod = row["kind"], row.get("pod")
        if pod is None:
            return
        if kind in TAKES:
            key = (pod, row.get("slot"))
            self.slots[key] = HeldSlot(pod, row.get("slot"), row.get("task"), TAKES[kind])
        elif kind == "slot.released":
            if row.get("slot") is None:  # the pod's every slot, as the checker reads it
                for key in [k for k in self.slots if k[0] == pod]:
                    del self.slots[key]
            else:
                self.slots.pop((pod, row["slot"]), None)

    def held(self) -> tuple[HeldSlot, ...]:
        """The slots held now, by pod and slot: the order the seed's own memory says them in."""
        return tuple(self.slots[k] for k in sorted(self.slots, key=lambda k: (k[0], k[1] or 0)))
