"""A stand-in API server that answers 503 to everything and records each request.

Tests point a kubeconfig (or a Vault address) at it to prove that a run failed before any request reached
the cluster: an empty record is measured, not assumed.
"""
import http.server
import threading

import yaml


class Recorder(http.server.BaseHTTPRequestHandler):
    """Every request as "<port> <METHOD> <path>"; clear it between tests."""

    requests = []

    def _record(self):
        Recorder.requests.append(f"{self.server.server_port} {self.command} {self.path}")
        self.send_response(503)
        self.end_headers()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_LIST = _record

    def log_message(self, *args):
        pass


def start():
    """A running recorder on a free loopback port; returns (server, url). Stop it with server.shutdown()."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def write_kubeconfig(path, url):
    """A kubeconfig whose only cluster is the recorder at url."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        "users": [{"name": "fake", "user": {"token": "not-a-real-token"}}],
    }))
    return path
