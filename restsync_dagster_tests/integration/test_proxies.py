"""The environment's proxy settings reach every request of a sync, prefetched pages included,
although the run reads them once per host (extract/http.py, ``EnvironmentSettings``): a real
forwarding proxy on 127.0.0.1 in front of the demo API."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from restsync_dagster.definitions import load_definitions
from restsync_dagster_tests.helpers import table_rows

CONNECTOR = """
name: proxied
rate_limit: {max_concurrency: 4}
allow_insecure_http: true  # the proxy test speaks plain http to a made-up host
source:
  client:
    base_url: "{{ env.PROXIED_BASE_URL }}"
    auth: {type: api_key, name: api_key, location: query, api_key: "{{ env.PROXIED_API_KEY }}"}
  resource_defaults: {primary_key: id, write_disposition: merge}
  resources:
    - name: items
      endpoint: {path: /v1/items, data_selector: data, paginator: {type: offset, limit: 100}}
"""
#: A host that does not resolve: only a proxy can answer for it.
API_HOST = "api.restsync-proxy-test.invalid"


class ForwardingProxy(ThreadingHTTPServer):
    """An HTTP proxy that forwards every request for ``API_HOST`` to ``upstream``."""

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = upstream
        self.seen: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: ForwardingProxy

    def do_GET(self) -> None:
        target = urlsplit(self.path)  # a proxy is sent the absolute URL
        with self.server.lock:
            self.server.seen.append(target.netloc)
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        upstream = f"{self.server.upstream}{target.path}?{target.query}"
        with direct.open(upstream, timeout=30) as answer:
            body, status = answer.read(), answer.status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy(demo_api) -> Iterator[ForwardingProxy]:
    server = ForwardingProxy(demo_api.url("generic").rstrip("/"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxied(restsync_home, tmp_path, monkeypatch):
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "proxied.yaml").write_text(CONNECTOR)
    monkeypatch.setenv("RESTSYNC_CONNECTORS_DIR", str(connectors))
    monkeypatch.setenv("RESTSYNC_INCLUDE_EXAMPLES", "false")
    monkeypatch.setenv("PROXIED_API_KEY", "demo-generic-key")
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def sync(instance) -> None:
    job = load_definitions().resolve_job_def("proxied_sync")
    assert job.execute_in_process(instance=instance).success


def test_every_request_of_a_sync_goes_through_the_environments_proxy(
    proxied, proxy, demo_api, restsync_home, instance
):
    proxied.setenv("PROXIED_BASE_URL", f"http://{API_HOST}")
    proxied.setenv("HTTP_PROXY", proxy.url)

    sync(instance)

    rows = len(demo_api.expected_rows("generic", "items"))
    assert len(table_rows(restsync_home, "proxied.items")) == rows
    # One request per page of 100, prefetched or not, and every one through the proxy.
    assert proxy.seen == [API_HOST] * -(-rows // 100)


def test_a_host_in_no_proxy_is_asked_directly(proxied, proxy, demo_api, restsync_home, instance):
    proxied.setenv("PROXIED_BASE_URL", demo_api.url("generic"))
    proxied.setenv("HTTP_PROXY", proxy.url)
    proxied.setenv("NO_PROXY", "127.0.0.1")

    sync(instance)

    assert len(table_rows(restsync_home, "proxied.items")) == len(
        demo_api.expected_rows("generic", "items")
    )
    assert proxy.seen == []
