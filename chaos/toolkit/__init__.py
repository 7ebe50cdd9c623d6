"""unstuck's Chaos Toolkit extension: the steps an experiment on a live scheduler needs that
chaostoolkit-kubernetes does not have.

chaostoolkit-kubernetes kills pods and drains nodes, but it cannot know which pod holds the
reservation of a task waiting for its confirm, and incident 601 is about exactly that pod. So
the extension finds it (from the service's history, the one record every scheduler variant
writes) and marks it with a label; the stock `chaosk8s.pod.actions.terminate_pods` then kills
what is marked. Where no stock action exists (a node lost on the local cluster or on kind, an
HPA patch, the reserved pod ranked first for a scale-down) the extension acts itself.

Experiments name tasks by workspace ("the newest task of ws-chaos-1"), not by id, because
Chaos Toolkit does not pass one activity's result to the next: each step asks the service.

Every fault step posts the service's `POST /faults` row before it acts, so the history the
checker judges says what was done and when (docs/service.md). Configuration, from the
experiment's `configuration` and `secrets` blocks (docs/chaos.md):

- `unstuck_url`: the service (default http://127.0.0.1:8080);
- `unstuck_namespace`: the agents' namespace (default unstuck);
- secret `unstuck.token`: a user's token, for writes;
- the Kubernetes API as chaostoolkit-kubernetes finds it (`KUBECONFIG`).
"""
