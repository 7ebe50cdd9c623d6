"""sim: the simulated world. A SimPy model that drives the scheduler core through its ports.

Contract: given a `sim.config.WorldConfig`, a scheduler variant name and an integer seed,
`sim.world.World(...).run()` returns a history (rows of `scheduler.history`) and nothing else
leaves the world. Time is SimPy's simulated clock; randomness comes only from child streams of
the seed (`sim.rng`); no wall clock, no global RNG, no I/O. Kubernetes behaviour comes from the
pure rules of `sim.kube`, which this package schedules but never re-implements. `sim` imports
`scheduler`, never `unstuck` or `chaos`.

Modules: `config` (the world's records), `rng` (seed splitting), `kernel` (SimPy callbacks,
tie perturbation), `cluster` (nodes, pods, Deployments, HPA), `agents`, `users`, `faults`,
`world` (assembly and the core's ports), `runner` (one seed in, rows and counters out).
"""
