"""The controller manager's loops, each a level-triggered reconcile over the store.

Contract: a controller reads the store directly (shared, immutable objects), writes through
the `Registry` (so the same validation, defaulting and events apply as for clients), takes
`now` from the cluster clock, and calls the shared rules in `sim.kube` for every decision
those rules cover. Controllers never call each other; they meet only in the store.
"""
