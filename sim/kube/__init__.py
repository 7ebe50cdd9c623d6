"""Kubernetes rules, written once: HPA, ReplicaSet victims, pod termination, node lifecycle.

Contract: pure functions over plain data (frozen dataclasses, tuples, numbers, strings). No I/O,
no clock (every function takes `now` in seconds), no randomness except a passed-in
`random.Random`; no `simpy`, no `kubernetes` client imports. The SimPy world (`sim/`) schedules
these rules in simulated time and the local control plane (`chaos/`) calls them in wall-clock
time, so both worlds scale, kill and evict the same way. Behaviour and default numbers come from
shared/specs/k8s-semantics.md; docs/kube-rules.md lists each rule and what is simplified.

Modules: `hpa` (one HPA v2 reconcile), `replicasets` (active pods, victim ranking, replacements),
`pods` (grace periods, start-up delays), `nodes` (lease grace, taints, eviction), `timescale`
(shorter timings for CI). Callers import the modules, e.g. `from sim.kube import hpa`.
"""

from sim.kube import hpa, nodes, pods, replicasets, timescale

__all__ = ["hpa", "nodes", "pods", "replicasets", "timescale"]
