"""The HTTP front: parse Kubernetes REST paths and hand them to the registry, watch or admin.

A `ThreadingHTTPServer` is enough: each request (and each long-lived watch) gets a thread,
HTTP/1.1 keep-alive serves the client's connection pool, and watches are chunked responses.
Every failure leaves as a `Status` body with the matching HTTP code, never as a traceback.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from collections.abc import Callable
from contextlib import nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from chaos.cluster import discovery, openapi, resources, tables, watch
from chaos.cluster.errors import ApiError, bad_request, not_supported
from chaos.cluster.registry import Registry, validate_watch_options

log = logging.getLogger(__name__)

# An admin hook answers /unstuck/v1/...: (method, path parts, body) -> (code, body).
AdminHook = Callable[[str, list[str], object], tuple[int, object]]
_TRUE = ("true", "True", "1")


_OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions",
                 "DELETE": "DeleteOptions"}


def _dry_run(method: str, sub: str | None, query: dict, body) -> bool:
    """Whether a write is a server-side dry run: `dryRun` in the query, or in the DeleteOptions
    a delete carries as its body (an eviction's `deleteOptions`), as client-go sends it.
    "All" is the only value; any other is 422 Invalid on the request's options, as upstream."""
    asked: list[tuple[str, list]] = []
    if "dryRun" in query:
        asked.append((_OPTIONS_KIND[method], [query["dryRun"]]))
    options = body if isinstance(body, dict) else {}
    if method == "POST" and sub == "eviction":
        options = options.get("deleteOptions")
        options = options if isinstance(options, dict) else {}
    elif method != "DELETE":
        options = {}
    if options.get("dryRun"):
        values = options["dryRun"]
        asked.append(("DeleteOptions", values if isinstance(values, list) else [values]))
    for kind, values in asked:
        if any(v != "All" for v in values):
            raise not_supported(kind, "", "dryRun", values, ["All"])
    return any(values for _, values in asked)


def _delete_options(query: dict, body) -> dict:
    """DeleteOptions from the body, overridden by the query parameters, as upstream merges
    them (the Python client sends grace_period_seconds and propagation_policy as query)."""
    options = body if isinstance(body, dict) else {}
    if "gracePeriodSeconds" in query:
        try:
            grace = int(query["gracePeriodSeconds"])
        except ValueError:
            raise bad_request(f"gracePeriodSeconds {query['gracePeriodSeconds']!r} is not "
                              "an integer number of seconds") from None
        options = {**options, "gracePeriodSeconds": grace}
    if "propagationPolicy" in query:
        options = {**options, "propagationPolicy": query["propagationPolicy"]}
    return options


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address) -> None:
        """What escapes a request's handler: socketserver prints it to stderr, traceback and
        all. A client that hangs up, most often in the middle of a keep-alive wait (a
        scheduler or a kubectl that exits, a killed process), is routine for an API server,
        and printed it reads as a crash in the terminal of `unstuck cluster up`: it is
        logged at debug. Anything else is a bug, logged with its traceback."""
        err = sys.exc_info()[1]
        if isinstance(err, (BrokenPipeError, ConnectionResetError)):
            log.debug("client %s:%s hung up: %s", *client_address[:2], err)
        else:
            log.exception("request from %s:%s failed", *client_address[:2])


class ApiServer:
    """Serve `registry` on 127.0.0.1:`port` (0 = ephemeral) until `stop()`."""

    def __init__(self, registry: Registry, *, port: int = 0, admin: AdminHook | None = None,
                 watch_timeout_s: float = 1800.0) -> None:
        self.registry = registry
        self.admin = admin
        self.watch_timeout_s = watch_timeout_s
        self._stopping = False
        handler = type("Handler", (_Handler,), {"api": self})
        self.httpd = _Server(("127.0.0.1", port), handler)
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="apiserver",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self.registry.store.close()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: ApiServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    # --- plumbing --------------------------------------------------------------------------
    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return None
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if "protobuf" in ctype or "cbor" in ctype or "yaml" in ctype:
            # client-go's typed clients (kubectl create deployment|configmap|secret|namespace,
            # kubectl autoscale) choose protobuf on their own and never retry as JSON; the
            # message says how to get the same object through JSON instead.
            raise ApiError(415, f"the body of the request was in an unknown format - accepted "
                                f"media types include: application/json, "
                                f"application/merge-patch+json, application/json-patch+json, "
                                f"application/strategic-merge-patch+json (got {ctype}); this "
                                f"local cluster speaks JSON only: for a kubectl generator use "
                                f"'kubectl create ... --dry-run=client -o yaml | "
                                f"kubectl apply -f -'")
        try:
            return json.loads(raw)
        except ValueError:
            raise bad_request("the request body is not valid JSON") from None

    def _send(self, code: int, body, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        try:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
            parts = [p for p in url.path.split("/") if p]
            result = self._route(method, parts, query, body)
            if result is not None:
                code, payload, *ctype = result
                self._send(code, payload, *(ctype or ["application/json"]))
        except ApiError as err:
            self._send(err.code, err.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug must still reach the client as a Status body
            log.exception("internal error on %s %s", method, self.path)
            self._send(500, ApiError(500, f"internal error: {exc!r}").status())

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    # --- routing ---------------------------------------------------------------------------
    def _route(self, method: str, parts: list[str], query: dict, body):
        if not parts:
            return 200, {"paths": ["/api", "/api/v1", "/apis", "/openapi/v3", "/version",
                                   "/healthz"]}
        head = parts[0]
        if parts[:2] == ["openapi", "v3"]:
            doc = openapi.root() if len(parts) == 2 else openapi.lookup(parts[2:])
            if doc is None:
                raise ApiError(404, f"no OpenAPI v3 document at {self.path}")
            return 200, doc
        if head == "version":
            return 200, discovery.SERVER_VERSION
        if head in ("healthz", "readyz", "livez"):
            return 200, "ok", "text/plain"
        if head == "unstuck" and self.api.admin is not None:
            return self.api.admin(method, parts[1:], body)
        if head == "api":
            if len(parts) == 1:
                host = self.headers.get("Host") or f"127.0.0.1:{self.api.port}"
                return 200, discovery.api_versions(host)
            group, version, rest = "", parts[1], parts[2:]
        elif head == "apis":
            if len(parts) == 1:
                return 200, discovery.api_group_list()
            if len(parts) == 2:
                doc = discovery.api_group(parts[1])
                if doc is None:
                    raise ApiError(404, f"the server could not find the group {parts[1]!r}")
                return 200, doc
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, f"the server could not find the requested resource {self.path}")
        if not rest:
            doc = discovery.resource_list(group, version)
            if doc is None:
                raise ApiError(404, f"the server could not find {group}/{version}")
            return 200, doc
        return self._resource(method, group, version, rest, query, body)

    def _resource(self, method, group, version, rest, query, body):
        watching = query.get("watch") in _TRUE
        if rest[0] == "watch":
            watching, rest = True, rest[1:]
        namespace = None
        if (len(rest) >= 3 and rest[0] == "namespaces"
                and resources.lookup(group, version, rest[2]) is not None):
            namespace, rest = rest[1], rest[2:]
        res = resources.lookup(group, version, rest[0])
        if res is None or len(rest) > 3:
            raise ApiError(404, f"the server could not find the requested resource {self.path}")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in res.subresources:
            raise ApiError(404, f"{res.plural} has no subresource {sub!r}")
        if res.namespaced and name is not None and namespace is None:
            raise ApiError(404, f"{res.plural} are namespaced: use "
                                f"/namespaces/NAMESPACE/{res.plural}/{name}")
        dry = method != "GET" and _dry_run(method, sub, query, body)
        # A dry run goes through the whole write path (defaults, validation, 409/422, budgets)
        # and answers what it would store; the store commits none of it.
        with self.api.registry.store.uncommitted() if dry else nullcontext():
            return self._dispatch(method, res, namespace, name, sub, watching, query, body)

    def _dispatch(self, method, res, namespace, name, sub, watching, query, body):
        reg = self.api.registry
        if name is None:
            if method == "GET" and watching:
                return self._watch(res, namespace, query)
            if method == "GET":
                listed = reg.list(res, namespace, label_selector=query.get("labelSelector"),
                                  field_selector=query.get("fieldSelector"),
                                  limit=query.get("limit"), continue_token=query.get("continue"),
                                  resource_version=query.get("resourceVersion"),
                                  resource_version_match=query.get("resourceVersionMatch"),
                                  send_initial_events=query.get("sendInitialEvents"))
                return 200, self._maybe_table(res, query, listed, tables.of_list)
            if method == "POST":
                return 201, reg.create(res, namespace, body or {})
            if method == "DELETE":
                return 200, reg.delete_collection(
                    res, namespace, _delete_options(query, body),
                    label_selector=query.get("labelSelector"),
                    field_selector=query.get("fieldSelector"))
            raise ApiError(405, f"{method} is not allowed on a {res.plural} collection")
        options = _delete_options(query, body) if method == "DELETE" else {}
        ctype = self.headers.get("Content-Type") or ""
        if sub in (None, "status"):
            if method == "GET":
                return 200, self._maybe_table(res, query, reg.get(res, namespace, name),
                                              tables.of_object)
            if method == "PUT":
                return 200, reg.update(res, namespace, name, body or {}, sub)
            if method == "PATCH":
                return 200, reg.patch(res, namespace, name, ctype, body, sub)
            if method == "DELETE" and sub is None:
                return 200, reg.delete(res, namespace, name, options)
        elif sub == "scale":
            if method == "GET":
                return 200, reg.get_scale(res, namespace, name)
            if method == "PUT":
                return 200, reg.set_scale(res, namespace, name, body or {})
            if method == "PATCH":
                return 200, reg.patch_scale(res, namespace, name, ctype, body)
        elif sub == "eviction" and method == "POST":
            return 201, reg.evict(namespace, name, body or {})
        elif sub == "binding" and method == "POST":
            return 201, reg.bind(namespace, name, body or {})
        elif sub == "log" and method == "GET":
            return 200, reg.read_log(namespace, name, query), "text/plain"
        raise ApiError(405, f"{method} is not allowed on {res.plural}/{sub or name}")

    def _maybe_table(self, res, query, payload, convert):
        """`payload` as the client asked for it: itself, or a meta.k8s.io Table of it."""
        version = tables.table_version(self.headers.get("Accept"))
        if version is None:
            return payload
        return convert(res, payload, now=self.api.registry.store.clock(), version=version,
                       mode=tables.include_mode(query))

    def _table_transform(self, res, query):
        """Per-event Table conversion for a watch, or None; columns ride on the first only."""
        version = tables.table_version(self.headers.get("Accept"))
        if version is None:
            return None
        mode, first = tables.include_mode(query), [True]
        clock = self.api.registry.store.clock

        def convert(obj: dict) -> dict:
            with_columns, first[0] = first[0], False
            return tables.of_object(res, obj, now=clock(), version=version, mode=mode,
                                    with_columns=with_columns)
        return convert

    def _watch(self, res, namespace, query):
        try:
            timeout = float(query.get("timeoutSeconds") or self.api.watch_timeout_s)
        except ValueError:
            raise bad_request(f"timeoutSeconds {query['timeoutSeconds']!r} is not a number") \
                from None
        validate_watch_options(query.get("resourceVersionMatch"), query.get("continue"),
                               query.get("sendInitialEvents"))
        events = watch.stream(
            self.api.registry.store, res, namespace,
            label_selector=query.get("labelSelector"), field_selector=query.get("fieldSelector"),
            resource_version=query.get("resourceVersion"), timeout_s=timeout,
            stopped=lambda: self.api._stopping, transform=self._table_transform(res, query),
            bookmarks=query.get("allowWatchBookmarks") in _TRUE)
        next(events)  # selector and resourceVersion errors surface here, before the 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for line in events:
                self._chunk(line)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        return None

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
