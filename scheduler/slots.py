"""The seed's pod slot manager (`K8sPodManager`, seed-system.md §3): an in-memory map.

Kept deliberately as the Go code has it: four slots per pod, random map iteration order
(from the run's seeded RNG), `ReleaseSlot` unconditional, nothing persisted, reservations
dropped with their pod. The reference scheduler does not use it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from scheduler.model import ManagedPod, Slot, SlotStatus, TaskType


@dataclass(frozen=True)
class SlotRef:
    pod: str
    slot: int


@dataclass(frozen=True)
class SlotStats:
    total: int
    used: int  # running
    reserved: int
    idle: int
    pods_with_running: int = 0  # pods with at least one running slot

    @property
    def utilization(self) -> float:
        return (self.used + self.reserved) / self.total if self.total else 0.0


class PodSlots:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        # Read freely; add and remove pods only through `add` and `remove`, which keep the
        # per-pool lists that every autoscaler cycle walks several times.
        self.pods: dict[str, ManagedPod] = {}
        self._of_pool: dict[str | None, list[ManagedPod]] = {}
        # Bumped by every change to the pods or their slots (make slot changes through the
        # methods below): a reader that saw version v and sees v again knows that nothing an
        # autoscaler pass counts has moved.
        self.version = 0
        # The same, per pool: a pass over one pool need not run again because another
        # pool's pods or slots moved.
        self._pool_versions: dict[str, int] = {}

    def version_of(self, pool_id: str) -> int:
        """The version of one pool's pods and slots (see `version`)."""
        return self._pool_versions.get(pool_id, 0)

    def _moved(self, pool_id: str) -> None:
        self.version += 1
        self._pool_versions[pool_id] = self._pool_versions.get(pool_id, 0) + 1

    def _random_order(self, pool_id: str | None = None) -> list[ManagedPod]:
        pods = list(self.of_pool(pool_id))
        self.rng.shuffle(pods)  # Go map iteration order
        return pods

    def of_pool(self, pool_id: str | None) -> list[ManagedPod]:
        """The pool's pods by name (every pod for None). Do not mutate the list."""
        pods = self._of_pool.get(pool_id)
        if pods is None:
            pods = self._of_pool[pool_id] = [
                p for _, p in sorted(self.pods.items()) if pool_id is None or p.pool_id == pool_id]
        return pods

    def add(self, name: str, pool_id: str, now: float) -> ManagedPod:
        pod = ManagedPod(name=name, pool_id=pool_id, created_at=now, last_heartbeat=now)
        self.pods[name] = pod
        self._of_pool.clear()
        self._moved(pool_id)
        return pod

    def remove(self, name: str) -> ManagedPod | None:
        pod = self.pods.pop(name, None)
        if pod is not None:
            self._of_pool.clear()
            self._moved(pod.pool_id)
        return pod

    def find_pod_with_free_slot(
        self, pool_id: str, task_type: TaskType, now: float, offline_after_s: float
    ) -> SlotRef | None:
        for pod in self._random_order(pool_id):
            if now - pod.last_heartbeat > offline_after_s:
                continue
            if task_type is TaskType.PLAN_AND_APPLY and any(
                s.task_type is TaskType.PLAN_AND_APPLY and s.status is not SlotStatus.IDLE
                for s in pod.slots
            ):
                continue
            for s in pod.slots:
                if s.status is SlotStatus.IDLE:
                    return SlotRef(pod.name, s.slot_id)
        return None

    def slot(self, ref: SlotRef) -> Slot | None:
        pod = self.pods.get(ref.pod)
        return pod.slots[ref.slot] if pod is not None else None

    def _slot_moved(self, ref: SlotRef) -> None:
        self._moved(self.pods[ref.pod].pool_id)

    def assign(self, ref: SlotRef, task_id: int, task_type: TaskType, now: float) -> bool:
        s = self.slot(ref)
        if s is None or s.status is not SlotStatus.IDLE:
            return False
        s.status, s.task_id, s.task_type, s.updated_at = SlotStatus.RUNNING, task_id, task_type, now
        self._slot_moved(ref)
        return True

    def release(self, ref: SlotRef, now: float) -> Slot | None:
        """Set idle unconditionally; returns the slot as it was, or None if the pod is unknown."""
        s = self.slot(ref)
        if s is None:
            return None
        before = s.copy()
        s.status, s.task_id, s.task_type, s.updated_at = SlotStatus.IDLE, None, None, now
        self._slot_moved(ref)
        return before

    def reserve(self, ref: SlotRef, task_id: int, now: float) -> bool:
        s = self.slot(ref)
        if s is None:
            return False
        s.status, s.task_id, s.task_type, s.updated_at = (
            SlotStatus.RESERVED, task_id, TaskType.PLAN_AND_APPLY, now,
        )
        self._slot_moved(ref)
        return True

    def find_by_task(self, task_id: int) -> SlotRef | None:
        for name, pod in sorted(self.pods.items()):
            for s in pod.slots:
                if s.task_id == task_id:
                    return SlotRef(name, s.slot_id)
        return None

    def idle_pods(self, pool_id: str) -> list[ManagedPod]:
        return [p for p in self._random_order(pool_id) if p.fully_idle]

    def stats(self, pool_id: str) -> SlotStats:
        used = reserved = total = with_running = 0
        running_, reserved_ = SlotStatus.RUNNING, SlotStatus.RESERVED
        for pod in self.of_pool(pool_id):
            statuses = [s.status for s in pod.slots]
            total += len(statuses)
            running = statuses.count(running_)
            used += running
            reserved += statuses.count(reserved_)
            with_running += running > 0
        return SlotStats(total, used, reserved, total - used - reserved, with_running)
