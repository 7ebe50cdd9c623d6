"""A local Kubernetes-compatible control plane whose pods are local processes.

Contract: `chaos.cluster` serves a real HTTP Kubernetes API (list, watch, get, create,
update, patch, delete, with selectors, resourceVersions, Status errors and discovery) from an
in-memory store, runs the documented controllers against that store (Deployment, ReplicaSet,
HPA, scheduler, node lifecycle, PodGC, disruption budgets) and runs every pod's containers as
local subprocesses through a per-node process kubelet. Kubernetes *rules* (HPA
recommendation, victim ranking, grace periods, node timings, time scale) come from the pure
functions in `sim.kube`; this package only schedules them on the wall clock. It imports
`sim.kube` and `scheduler`, nothing else of `sim`, and it only ever binds 127.0.0.1.
"""
