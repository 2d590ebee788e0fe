"""Loopback HTTP endpoints: ``/health`` (JSON) and ``/metrics`` (Prometheus text)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

__all__ = ["HealthServer", "render_metrics"]


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _metric_name(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return out if not out[:1].isdigit() else "_" + out


def render_metrics(actors: list[dict], rings: list[dict], extra: dict[str, float] | None = None) -> str:
    """Prometheus exposition text from actor-table rows and ring reader stats."""
    lines = [
        "# HELP undertow_actor_up 1 if the actor process is running and beating.",
        "# TYPE undertow_actor_up gauge",
    ]
    for a in actors:
        lines.append(f'undertow_actor_up{{actor="{_label(a["name"])}"}} {1 if a.get("up") else 0}')
    lines += ["# HELP undertow_actor_restarts_total Restarts performed by the supervisor.",
              "# TYPE undertow_actor_restarts_total counter"]
    for a in actors:
        lines.append(f'undertow_actor_restarts_total{{actor="{_label(a["name"])}"}} {a["restarts"]}')
    lines += ["# HELP undertow_actor_heartbeat_age_seconds Seconds since the actor's last heartbeat.",
              "# TYPE undertow_actor_heartbeat_age_seconds gauge"]
    for a in actors:
        lines.append(f'undertow_actor_heartbeat_age_seconds{{actor="{_label(a["name"])}"}} {a["heartbeat_age_s"]:.3f}')
    by_counter: dict[str, list[tuple[str, float]]] = {}
    for a in actors:
        for k, v in a.get("counters", {}).items():
            by_counter.setdefault(k, []).append((a["name"], v))
    for k in sorted(by_counter):
        m = "undertow_" + _metric_name(k)
        lines.append(f"# TYPE {m} gauge")
        for actor, v in by_counter[k]:
            lines.append(f'{m}{{actor="{_label(actor)}"}} {v:g}')
    lines += ["# HELP undertow_ring_written_total Records published to a feed ring.",
              "# TYPE undertow_ring_written_total counter"]
    for r in rings:
        lines.append(f'undertow_ring_written_total{{ring="{_label(r["ring"])}"}} {r["written"]}')
    lines += ["# TYPE undertow_ring_reader_lag gauge", "# TYPE undertow_ring_reader_lost_total counter"]
    for r in rings:
        for rd in r["readers"]:
            lbl = f'ring="{_label(r["ring"])}",reader="{_label(rd["name"])}"'
            lines.append(f"undertow_ring_reader_lag{{{lbl}}} {rd['lag']}")
            lines.append(f"undertow_ring_reader_lost_total{{{lbl}}} {rd['lost']}")
    for k, v in (extra or {}).items():
        lines.append(f"undertow_{_metric_name(k)} {v:g}")
    return "\n".join(lines) + "\n"


class HealthServer:
    """Serve ``/health`` and ``/metrics`` from callables, in a daemon thread."""

    def __init__(self, host: str, port: int, health: Callable[[], dict], metrics: Callable[[], str]):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server naming
                try:
                    if self.path.split("?")[0] == "/health":
                        h = outer.health()
                        body = json.dumps(h).encode()
                        code = 200 if h.get("ok") else 503
                        ctype = "application/json"
                    elif self.path.split("?")[0] == "/metrics":
                        body = outer.metrics().encode()
                        code, ctype = 200, "text/plain; version=0.0.4"
                    else:
                        body, code, ctype = b"not found\n", 404, "text/plain"
                except Exception as exc:  # report, never kill the server thread
                    body, code, ctype = f"error: {exc}\n".encode(), 500, "text/plain"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep the journal quiet
                pass

        self.health, self.metrics = health, metrics
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True)

    def start(self) -> "HealthServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
