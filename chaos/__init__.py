"""The live world: real processes, a real Kubernetes API, wall-clock time.

Contract: `chaos` owns the wall clock and real I/O (HTTP servers, subprocesses, signals) and
may import `scheduler` and the shared pure Kubernetes rules in `sim.kube`, nothing else of
`sim`. `chaos.cluster` is the local Kubernetes-compatible control plane with process-backed
pods that chaos experiments run against when no kind cluster is available.
"""
