"""Node loss on kind: a kind node is a container of the host's container runtime, so pausing
it freezes the node's kubelet and every pod on it at once, as a machine that drops off the
network does (the node lifecycle controller then marks it Unknown and evicts its pods), and
as the local cluster's freeze does. Unpausing is the heal. This is what Krkn's Docker node
provider does on kind; chaostoolkit-kubernetes' `delete_nodes` only deletes the Node object.

kind names each node in its `spec.providerID`: `kind://<runtime>/<cluster>/<container>`.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from chaoslib.exceptions import ActivityFailed

_PROVIDER = re.compile(r"kind://(docker|podman|nerdctl)/[^/]+/(.+)")


def container_of(provider_id: str | None) -> tuple[str, str] | None:
    """The container runtime and the container of a kind node, or None for another node."""
    m = _PROVIDER.fullmatch(provider_id or "")
    return (m[1], m[2]) if m else None


def _run(runtime: str, *args: str) -> str:
    if shutil.which(runtime) is None:
        raise ActivityFailed(f"kind node {args[-1]}: no `{runtime}` on PATH to {args[0]} its "
                             f"container with; run the experiment on the host that runs kind")
    done = subprocess.run([runtime, *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise ActivityFailed(f"`{runtime} {' '.join(args)}` failed (exit {done.returncode}): "
                             f"{(done.stderr or done.stdout).strip()}")
    return done.stdout


def pause(runtime: str, container: str) -> None:
    _run(runtime, "pause", container)


def heal(nodes: dict[str, tuple[str, str]]) -> list[str]:
    """Unpause every paused container of `nodes` (node -> runtime, container); the nodes healed."""
    healed = []
    for node, (runtime, container) in sorted(nodes.items()):
        if _run(runtime, "inspect", "--format", "{{.State.Paused}}", container).strip() == "true":
            _run(runtime, "unpause", container)
            healed.append(node)
    return healed
