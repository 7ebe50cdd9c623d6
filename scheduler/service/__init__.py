"""scheduler.service: the live scheduler, an adapter around the pure core.

Contract: this package owns the only real clock of a live run, the HTTP API, and the port
adapters (durable store, static or Kubernetes cluster, agent mailboxes, event-loop timer,
durable history log, Prometheus metrics). It turns HTTP requests, agent messages, cluster
watch events and timer wake-ups into `scheduler.events` values and hands each one to
`Scheduler.handle(event, now)`, one at a time, on one asyncio event loop (the core is a
single-threaded state machine). It may do I/O and read the clock; the core modules it
wraps must never import it. docs/service.md describes the design, docs/agent-protocol.md
the agent wire protocol.
"""
