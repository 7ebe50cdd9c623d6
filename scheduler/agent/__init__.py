"""scheduler.agent: the agent process (`unstuck agent`), a simulated Terraform runner.

Contract: an adapter process that talks to the live service over the HTTP long-poll protocol
of docs/agent-protocol.md and to a shared directory that stands for the Terraform backend
(saved plans, state, and a fenced state lock). It may do I/O, read the clock and sleep; the
scheduler core never imports it. `backend` is the simulated Terraform backend, `runs` executes
one plan or apply, `client` speaks the protocol (with an ordered outbox of reports), and
`process` is the main loop (register, heartbeat, poll, SIGTERM).
"""
