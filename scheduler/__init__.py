"""scheduler: the system under test.

Contract: `scheduler.core` and everything it imports (`model`, `events`, `history`,
`ports`, `variants`, `slots`, `autoscaler`) is a pure state machine: it receives an event
and `now`, acts only through the ports of `scheduler.ports`, and never reads a clock,
sleeps, or touches global randomness (a seeded `random.Random` is passed in). The stores,
the service and the agent are adapters around it and are the only places allowed I/O.
"""
