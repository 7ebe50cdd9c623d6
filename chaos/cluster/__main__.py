"""`python -m chaos.cluster`: run a local control plane in the foreground until SIGTERM/^C.

Writes the kubeconfig entry once the API answers, and (with --ready-file) a JSON file with
the cluster info, which is how `unstuck cluster up` knows its background child is ready.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from chaos.cluster import kubeconfig
from chaos.cluster.cluster import LocalCluster
from scheduler import files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.cluster",
                                     description="Local Kubernetes-compatible control plane "
                                                 "with process-backed pods.")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--port", type=int, default=0, help="127.0.0.1 port (0: any free one)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="divide every Kubernetes timing by this factor (10: 10x faster)")
    parser.add_argument("--kubeconfig", type=Path, default=None,
                        help="kubeconfig to write (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--ready-file", type=Path, default=None)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cluster = LocalCluster(nodes=args.nodes, port=args.port, time_scale=args.time_scale)
    except (ValueError, OSError) as err:
        print(f"unstuck cluster: {err}", file=sys.stderr)
        return 2
    path = args.kubeconfig or kubeconfig.default_path()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    cluster.start()
    kubeconfig.write(path, cluster.url, time_scale=args.time_scale)
    info = {**cluster.info(), "kubeconfig": str(path)}
    if args.ready_file:
        files.write_text(args.ready_file, json.dumps(info))
    print(json.dumps(info), flush=True)
    while not done.is_set() and not cluster.stopped.is_set():
        done.wait(0.2)
    cluster.stop()
    if kubeconfig.server_of(path) == cluster.url:
        kubeconfig.remove(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
