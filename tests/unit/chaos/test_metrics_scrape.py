"""`scrape_gauge`: the HPA's read of a Prometheus exposition (a scheduler's /metrics), from a
real local HTTP endpoint serving what prometheus-client writes."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from chaos.cluster.metrics import MetricUnavailable, scrape_gauge


@pytest.fixture
def endpoint():
    registry = CollectorRegistry()
    busy = Gauge("busy", "busy slots", ["pod"], registry=registry)
    busy.labels(pod="pod a {1}").set(2)  # a label value with a space and braces
    busy.labels(pod="pod-b").set(1.5)
    Gauge("other", "not asked for", registry=registry).set(7)
    body = generate_latest(registry)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body if self.path == "/metrics" else b"busy{pod=\n")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_gauge_is_the_sum_of_its_samples_and_an_absent_one_is_none(endpoint):
    assert scrape_gauge(f"{endpoint}/metrics", "busy") == 3.5
    assert scrape_gauge(f"{endpoint}/metrics", "missing") is None


def test_a_malformed_exposition_is_unavailable_not_a_crash(endpoint):
    with pytest.raises(MetricUnavailable, match="cannot read busy"):
        scrape_gauge(f"{endpoint}/broken", "busy")
