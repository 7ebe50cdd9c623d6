"""The simulated Terraform state backend: each workspace's state lock and the applies committed.

The live backend (scheduler/agent/backend.py) keeps the same three facts in files: who holds
a workspace's lock, whether their lease still runs, and every apply committed. Here the
simulated agents take the lock for `(task, fence)`, commit under it and give it back; a
working agent renews its lease without a word, so a lease runs out only once its holder has
been frozen or dead for `lease_s` (`AgentSim.stalled_at`). Our agent takes the lock before it
claims the apply; while the claim waits it renews only as long as the scheduler answers it, so
the lock of an apply still waiting for its claim also lapses once its agent has been cut off
for `claims.lapses_after_s(lease_s)` (`AgentSim.cut_since`). The seed's agent holds no lease
(`lease_s` None): a newer apply always takes its lock over.

The reference scheduler reads it through the `StateBackend` port (`apply_outcome`) when the
agent of an apply goes silent: the state, not the scheduler, knows whether the change was
made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scheduler import claims
from scheduler.ports import ApplyOutcome, RunTask

if TYPE_CHECKING:
    from sim.agents import AgentSim
    from sim.kernel import Kernel


class StateSim:
    def __init__(self, kernel: Kernel, lease_s: float | None) -> None:
        self.kernel = kernel
        self.lease_s = lease_s
        self.lock: dict[str, tuple[int, int]] = {}  # workspace -> (task, fence) holding it
        self.holder: dict[str, AgentSim] = {}  # whose lease the lock is under
        self.commits: set[tuple[int, int]] = set()  # (task, fence) of every apply committed
        self.claiming: set[tuple[int, int]] = set()  # locks whose apply waits for its claim

    def lapsed(self, agent: AgentSim, now: float, claiming: bool = False) -> bool:
        """Whether `agent`'s lease has run out: it renews while it works, so once it has been
        frozen or dead for longer than `lease_s`; for a lock whose apply waits for its claim
        (`claiming`), also once the agent has been cut off from the scheduler for
        `claims.lapses_after_s`. Never without leases (the seed's)."""
        lease = self.lease_s
        if lease is None:
            return False
        if agent.stalled_at is not None and now - agent.stalled_at > lease:
            return True
        return claiming and agent.cut_since is not None and \
            now - agent.cut_since > claims.lapses_after_s(lease)

    def leased(self, workspace: str, now: float) -> bool:
        """Whether the workspace's lock is held under a live lease. False without leases."""
        if self.lease_s is None:
            return False
        holder = self.holder.get(workspace)
        return holder is not None and \
            not self.lapsed(holder, now, self.lock[workspace] in self.claiming)

    def take(self, run: RunTask, agent: AgentSim) -> tuple[int, int] | None:
        """Take the lock for `run`; returns the token it superseded, if any."""
        prev = self.lock.get(run.workspace_id)
        self.lock[run.workspace_id] = (run.task_id, run.fence)
        self.holder[run.workspace_id] = agent
        return prev if prev != (run.task_id, run.fence) else None

    def holds(self, run: RunTask) -> bool:
        return self.lock.get(run.workspace_id) == (run.task_id, run.fence)

    def free(self, run: RunTask) -> None:
        """The lock, freed if `run` still holds it."""
        self.claiming.discard((run.task_id, run.fence))
        if self.holds(run):
            del self.lock[run.workspace_id]
            self.holder.pop(run.workspace_id, None)

    def commit(self, run: RunTask) -> None:
        self.commits.add((run.task_id, run.fence))

    # ------------------------------------------------------------------ StateBackend port
    def apply_outcome(self, workspace_id: str, task_id: int, fence: int) -> ApplyOutcome:
        if (task_id, fence) in self.commits:
            return ApplyOutcome.COMMITTED
        if self.lock.get(workspace_id) == (task_id, fence) and (
                self.lease_s is None or self.leased(workspace_id, self.kernel.now)):
            return ApplyOutcome.IN_DOUBT
        return ApplyOutcome.NOT_COMMITTED
