"""Simulated users: task arrivals per workspace, and what a human does with a finished plan.

* Arrivals: each workspace of a group creates tasks at the group's `at` times and, with
  `every_s`, after exponential gaps, until the workload ends. A create on a locked workspace
  is answered 423 and dropped (the user goes away).
* A plan_and_apply plan that ends with changes is seen by its user (the UI shows the new
  status): after a drawn delay the user confirms, with the digest on screen at that moment;
  or cancels; or never comes back. A double click sends the same confirm twice, `gap_s`
  apart. The user decides once per plan (a new plan after a re-plan is a new decision) and
  does not click Confirm on a task that is already confirmed: re-clicking a stuck task is
  the incident's manual workaround, and it would hide the bug.
* Opt-in (`cancel_anytime`): a created task is cancelled by its user, with that probability, a
  drawn delay after its creation, whatever stage it is in by then (nothing if it has ended).
* Opt-in (`click_retries`): a Confirm or a Cancel answered 5xx ("not stored; retry") is
  clicked again after a drawn delay, at most that many times (the UI shows the error, the
  user clicks again): a Confirm while the task still waits unconfirmed on the same plan, a
  Cancel while the task has not ended.
* Opt-in (`run_triggers`): a created plan_and_apply task is, with that probability, a run
  trigger's: its description starts "Triggered by workspace", as RunTriggerService writes it
  (the source workspace's apply is not modelled; the task is created like any other). The
  seed's startup recovery cancels such tasks while they are pending (seed-system.md §5).
These draw from streams of their own, so that with them off every other draw is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scheduler import events as ev
from scheduler.history import Kind, Source
from scheduler.model import RUN_TRIGGER_PREFIX, TaskStatus, TaskType

if TYPE_CHECKING:
    from sim.world import World


class Users:
    def __init__(self, world: World) -> None:
        self.w = world
        self.cfg = world.cfg.users
        self.rng = world.rng("users")
        self.arrivals = world.rng("arrivals")
        self.decided: set[tuple[int, str | None]] = set()
        # Streams of their own: turning these on shifts no other draw.
        self.cancel_rng = world.rng("users.cancel_anytime")
        self.retry_rng = world.rng("users.click_retry")
        self.trigger_rng = world.rng("users.run_triggers")

    def start(self) -> None:
        end = self.w.cfg.duration_s
        for group in self.w.cfg.workload:
            types = [TaskType(name) for name, _ in group.types]
            weights = [w for _, w in group.types]
            for ws in group.workspace_names():
                for t in group.at:
                    if t <= end:
                        self.w.kernel.at(t, self.create, ws, types, weights, None)
                if group.every_s:
                    first = self.arrivals.expovariate(1.0 / group.every_s)
                    if first <= end:
                        self.w.kernel.at(first, self.create, ws, types, weights, group.every_s)

    def create(self, ws: str, types: list[TaskType], weights: list[float], every: float | None) -> None:
        ttype = types[0] if len(types) == 1 else self.arrivals.choices(types, weights)[0]
        data: dict[str, object] = {"action": "create", "type": ttype.value, "user": self.cfg.name}
        description = ""
        if (self.cfg.run_triggers > 0 and ttype is TaskType.PLAN_AND_APPLY
                and self.trigger_rng.random() < self.cfg.run_triggers):
            description = f"{RUN_TRIGGER_PREFIX} (simulated run trigger)"
            data["run_trigger"] = True
        self.w.record(Kind.USER, Source.USER, workspace=ws, reason="create task", data=data)
        out = self.w.send(ev.TaskCreated(ws, ttype, self.cfg.name, description))
        if out.ok and out.task_id is not None and self.cfg.cancel_anytime > 0:
            if self.cancel_rng.random() < self.cfg.cancel_anytime:
                delay = self.cfg.cancel_anytime_delay.sample(self.cancel_rng)
                self.w.kernel.after(delay, self.cancel, out.task_id, "anytime")
        if every:
            nxt = self.w.kernel.now + self.arrivals.expovariate(1.0 / every)
            if nxt <= self.w.cfg.duration_s:
                self.w.kernel.at(nxt, self.create, ws, types, weights, every)

    # ------------------------------------------------------------------ plans
    def saw_apply_pending(self, task_id: int) -> None:
        """Called from the history sink inside a scheduler call: act later, never inside it."""
        self.w.kernel.after(0.0, self._decide, task_id)

    def _decide(self, task_id: int) -> None:
        task = self.w.store.get_task(task_id)
        if task is None or task.status is not TaskStatus.APPLY_PENDING or task.confirmed:
            return
        key = (task_id, task.plan_digest)
        if key in self.decided:
            return
        self.decided.add(key)
        cfg, rng = self.cfg, self.rng
        roll = rng.random()
        delay = cfg.confirm.sample(rng)
        if roll < cfg.never_confirm:
            return
        if roll < cfg.never_confirm + cfg.cancel:
            self.w.kernel.after(delay, self.cancel, task_id)
        elif roll < cfg.never_confirm + cfg.cancel + cfg.double_click:
            self.w.kernel.after(delay, self.double_click, task_id, cfg.double_click_gap_s)
        else:
            self.w.kernel.after(delay, self.confirm, task_id)

    def confirm(self, task_id: int) -> None:
        task = self.w.store.get_task(task_id)
        if task is None or task.status is not TaskStatus.APPLY_PENDING or task.confirmed:
            return
        self.click(task_id, task.plan_digest)

    def click(self, task_id: int, digest: str | None, retry: int = 0) -> None:
        task = self.w.store.get_task(task_id)
        ws = task.workspace_id if task is not None else None
        data: dict[str, object] = {"action": "confirm", "user": self.cfg.name, "digest": digest}
        if retry:
            data["retry"] = retry
        self.w.record(Kind.USER, Source.USER, task=task_id, workspace=ws,
                      reason="confirm apply again" if retry else "confirm apply", data=data)
        out = self.w.send(ev.ConfirmApply(task_id, self.cfg.name, digest))
        self._again(out, retry, self.retry_confirm, task_id, digest)

    def _again(self, out: ev.Outcome, retry: int, click: Callable[..., None], *args: Any) -> None:
        """A click answered 5xx ("not stored; retry") is made again, `click_retries` times at
        most: `click(*args, retry + 1)` after a `click_retry` draw."""
        if out.status >= 500 and retry < self.cfg.click_retries:
            self.w.kernel.after(self.cfg.click_retry.sample(self.retry_rng), click, *args, retry + 1)

    def retry_confirm(self, task_id: int, digest: str | None, retry: int) -> None:
        """Click Confirm again after a 5xx, on the plan the user confirmed: not once the task
        is confirmed, has moved on, or shows a new plan (a new plan is a new decision)."""
        task = self.w.store.get_task(task_id)
        if (task is None or task.status is not TaskStatus.APPLY_PENDING or task.confirmed
                or task.plan_digest != digest):
            return
        self.click(task_id, digest, retry)

    def double_click(self, task_id: int, gap_s: float) -> bool:
        task = self.w.store.get_task(task_id)
        if task is None or task.status is not TaskStatus.APPLY_PENDING or task.confirmed:
            return False
        self.decided.add((task_id, task.plan_digest))
        self.click(task_id, task.plan_digest)
        self.w.kernel.after(gap_s, self.click, task_id, task.plan_digest)
        return True

    def cancel(self, task_id: int, when: str | None = None, retry: int = 0) -> None:
        """Cancel the task unless it has ended; `when="anytime"` marks the opt-in cancel at
        any stage (its row also names the status the user saw); `retry`: the n-th click
        again after a 5xx."""
        task = self.w.store.get_task(task_id)
        if task is None or task.terminal:
            return
        data: dict[str, object] = {"action": "cancel", "user": self.cfg.name}
        if when is not None:
            data.update(when=when, status=task.status.value)
        if retry:
            data["retry"] = retry
        self.w.record(Kind.USER, Source.USER, task=task_id, workspace=task.workspace_id,
                      reason="cancel task again" if retry else "cancel task", data=data)
        out = self.w.send(ev.CancelTask(task_id, self.cfg.name))
        self._again(out, retry, self.cancel, task_id, when)
