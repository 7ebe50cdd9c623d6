"""`unstuck cluster up|status|down`: start, inspect and stop a local (or kind) cluster.

The lead mounts `app` as the `cluster` sub-command. Every failure is one clear line on stderr
and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from chaos.cluster import daemon, kind
from chaos.cluster import kubeconfig as kubeconfigs

app = typer.Typer(help="A Kubernetes-compatible cluster for chaos experiments.",
                  no_args_is_help=True)

_KUBECONFIG = typer.Option(None, "--kubeconfig",
                           help="kubeconfig naming the cluster (default: $KUBECONFIG or "
                                "~/.kube/config)")


def _path(value: Path | None) -> Path:
    return value or kubeconfigs.default_path()


def _fail(message: str) -> None:
    typer.echo(f"unstuck cluster: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def up(local: bool = typer.Option(False, "--local", help="local control plane, process pods"),
       use_kind: bool = typer.Option(False, "--kind", help="a kind cluster (needs Docker)"),
       nodes: int = typer.Option(3, "--nodes", min=1),
       kubeconfig: Path | None = _KUBECONFIG,
       time_scale: float = typer.Option(1.0, "--time-scale",
                                        help="divide Kubernetes timings by this (10 = 10x)"),
       port: int = typer.Option(0, "--port", help="127.0.0.1 port; 0 picks a free one")) -> None:
    """Start a cluster in the background and write its kubeconfig entry."""
    if local == use_kind:
        _fail("choose exactly one of --local (no Docker needed) or --kind")
    path = _path(kubeconfig)
    from unstuck.cli import output_problem

    if problem := output_problem("--kubeconfig", path, folder=False, example="config"):
        _fail(problem)
    if use_kind:
        try:
            kind.up(nodes, path)
        except kind.KindUnavailable as err:
            _fail(str(err))
        typer.echo(f"kind cluster 'unstuck' is up; kubeconfig: {path}")
        return
    try:
        info = daemon.up(path, nodes=nodes, time_scale=time_scale, port=port)
    except (daemon.ClusterError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"local cluster up at {info['server']} with {nodes} nodes "
               f"(time scale {time_scale:g}, pid {info['pid']}); kubeconfig: {path}")


@app.command()
def status(kubeconfig: Path | None = _KUBECONFIG,
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Show the cluster the kubeconfig names: server, nodes, pods, time scale."""
    try:
        info = daemon.status(_path(kubeconfig))
    except (daemon.ClusterError, ValueError) as err:
        _fail(str(err))
    if as_json:
        typer.echo(json.dumps(info))
        return
    nodes = ", ".join(f"{n} ({s})" for n, s in info["nodes"].items())
    typer.echo(f"server {info['server']}  pid {info['pid']}  time scale {info['timeScale']:g}\n"
               f"nodes: {nodes}\npods: {info['pods']}")


@app.command()
def down(kubeconfig: Path | None = _KUBECONFIG) -> None:
    """Stop the cluster the kubeconfig names and remove its kubeconfig entry."""
    path = _path(kubeconfig)
    try:
        info = daemon.down(path)
    except ValueError as err:
        _fail(str(err))
    typer.echo(f"stopped the local cluster at {info['server']}" if info
               else f"no running local cluster in {path}; entry removed")
