#!/usr/bin/env python3
"""The hermetic cluster's network: the only way the kube-apiserver reaches "the cluster".

The apiserver's egress selector (`.cluster/egress-selector.yaml`, name `cluster`, proxyProtocol HTTPConnect over a
Unix socket, as to konnectivity) opens one connection to this socket per dial and writes

    CONNECT <ip>:<port> HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n

then expects a `200` status line and headers and nothing else before it starts TLS on the same connection
(k8s.io/apiserver pkg/server/egressselector, tunnelHTTPConnect). Without --enable-aggregator-routing (we do not set
it) APIServices and admission webhooks backed by a Service are dialed at the Service's ClusterIP and Service port
(kube-aggregator's ClusterIP service resolver, used by both); kubelet calls (logs, exec, port-forward) and the
pod/service proxy dial node or pod IPs.

This proxy accepts a CONNECT only when <ip>:<port> is the ClusterIP and port of a Service that has a route in the
routes file (`{"<namespace>/<service>:<port>": "127.0.0.1:<hostport>"}`, maintained by hack/cluster/route.sh), and
then splices the connection to that loopback host port. Everything else is refused with a status line that says why
(the apiserver puts it into its error) and a log line. Targets are loopback addresses only, so nothing is ever sent
off the machine. ClusterIPs are read from the apiserver (a list of all Services, cached for --ttl seconds, re-read on
a miss). Python 3.11 standard library only.

Usage:
  cluster-network.py serve --socket S --routes R --server URL --cacert CA --cert CRT --key KEY [--ttl 2]
  cluster-network.py route --routes R add <ns>/<svc>:<port> <hostport|127.0.0.1:hostport>
  cluster-network.py route --routes R remove <ns>/<svc>:<port>
  cluster-network.py route --routes R list
A non-CONNECT `GET /healthz` on the socket answers 200 (the cluster scripts' health check).
"""
import argparse
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.request

ROUTE_KEY = re.compile(
    r"^(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(?P<svc>[a-z]([-a-z0-9]*[a-z0-9])?):(?P<port>[0-9]{1,5})$")
MAX_HEAD = 8192
DIAL_TIMEOUT = 3.0


def log(msg):
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())} {msg}", flush=True)


# --------------------------------------------------------------------------------------------------- routes file
def parse_target(value):
    """'31234' or '127.0.0.1:31234' or '[::1]:31234' -> (host, port); loopback hosts only."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"target {value!r}: the host must be a loopback IP address (127.0.0.1), not {host!r}")
    if not ip.is_loopback:
        raise ValueError(f"target {value!r}: only loopback addresses are routed (the cluster network never leaves "
                         f"the machine), not {host}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"target {value!r}: the port must be a number from 1 to 65535")
    return str(ip), int(port)


def check_key(key):
    m = ROUTE_KEY.match(key)
    if not m or not 0 < int(m["port"]) < 65536:
        raise ValueError(f"route {key!r}: expected <namespace>/<service>:<service port>, "
                         "e.g. keda/keda-operator-metrics-apiserver:443")
    return m["ns"], m["svc"], int(m["port"])


class Routes:
    """The routes file, re-read when its mtime or size changes."""

    def __init__(self, path):
        self.path = path
        self.stamp = None
        self.routes = {}
        self.lock = threading.Lock()

    def get(self):
        with self.lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except FileNotFoundError:
                stamp = None
            if stamp != self.stamp:
                routes = {}
                if stamp is not None:
                    try:
                        with open(self.path, encoding="utf-8") as f:
                            raw = json.load(f)
                        for key, target in raw.items():
                            check_key(key)
                            routes[key] = parse_target(target)
                    except (OSError, ValueError, AttributeError) as e:
                        log(f"ERROR routes file {self.path} unreadable, no routes until it is fixed: {e}")
                        routes = {}
                self.routes, self.stamp = routes, stamp
            return self.routes


@contextlib.contextmanager
def locked_routes(path):
    """Read-modify-write of the routes file under an exclusive lock; written atomically (rename)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        try:
            with open(path, encoding="utf-8") as f:
                routes = json.load(f)
        except FileNotFoundError:
            routes = {}
        before = dict(routes)
        yield routes
        if routes != before:
            tmp = f"{path}.tmp.{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(dict(sorted(routes.items())), f, indent=2)
                f.write("\n")
            os.replace(tmp, path)


def route_main(args):
    try:
        if args.action == "add":
            check_key(args.key)
            host, port = parse_target(args.target)
            with locked_routes(args.routes) as routes:
                routes[args.key] = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
            print(f"route {args.key} -> {routes[args.key]}")
        elif args.action == "remove":
            check_key(args.key)
            with locked_routes(args.routes) as routes:
                gone = routes.pop(args.key, None)
            print(f"route {args.key} removed" if gone else f"route {args.key} was not there")
        else:
            try:
                with open(args.routes, encoding="utf-8") as f:
                    routes = json.load(f)
            except FileNotFoundError:
                routes = {}
            for key, target in sorted(routes.items()):
                print(f"{key} -> {target}")
    except ValueError as e:
        print(f"route: {e}", file=sys.stderr)
        return 2
    return 0


# ------------------------------------------------------------------------------------------------ Service lookup
class Services:
    """ClusterIP:port -> '<ns>/<svc>:<port>' of every Service, from one list call, cached for `ttl` seconds."""

    def __init__(self, server, cacert, cert, key, ttl):
        self.url = server.rstrip("/") + "/api/v1/services"
        self.ctx = ssl.create_default_context(cafile=cacert)
        self.ctx.load_cert_chain(cert, key)
        self.ttl = ttl
        self.by_addr = {}
        self.fetched = 0.0
        self.lock = threading.Lock()

    def _refresh(self):
        req = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=5) as resp:
            items = json.load(resp)["items"]
        by_addr = {}
        for svc in items:
            meta, spec = svc["metadata"], svc.get("spec", {})
            ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
            for ip in ips:
                if not ip or ip == "None":
                    continue
                for p in spec.get("ports", []):
                    key = f"{meta['namespace']}/{meta['name']}:{p['port']}"
                    by_addr[(str(ipaddress.ip_address(ip)), p["port"])] = key
        self.by_addr, self.fetched = by_addr, time.monotonic()

    def lookup(self, ip, port):
        """The Service key of ip:port, or None. A miss re-reads the list unless it is fresher than 0.2 s."""
        with self.lock:
            age = time.monotonic() - self.fetched
            if age > self.ttl:
                self._refresh()
            found = self.by_addr.get((ip, port))
            if found is None and age > 0.2:
                self._refresh()
                found = self.by_addr.get((ip, port))
            return found


# ------------------------------------------------------------------------------------------------------- proxy
class Refused(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code, self.reason = code, reason


def read_head(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(MAX_HEAD)
        if not chunk:
            raise ConnectionError("connection closed before the request head ended")
        buf += chunk
        if len(buf) > MAX_HEAD:
            raise Refused(431, "the request head is too large")
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class Proxy:
    def __init__(self, routes, services):
        self.routes = routes
        self.services = services

    def resolve(self, target):
        """CONNECT target -> (service key, (host, port)) or Refused."""
        host, sep, port = target.rpartition(":")
        host = host.strip("[]")
        if not sep or not port.isdigit():
            raise Refused(400, f"{target!r}: not a host:port CONNECT target")
        try:
            ip = str(ipaddress.ip_address(host))
        except ValueError:
            raise Refused(403, f"{target}: not an IP address (ExternalName Services and host names are not routed)")
        try:
            key = self.services.lookup(ip, int(port))
        except (OSError, ValueError, KeyError) as e:
            raise Refused(503, f"{target}: cannot list Services from the apiserver: {e}")
        if key is None:
            raise Refused(403, f"{target}: not the ClusterIP:port of any Service (pod, node and other "
                               f"addresses are not routed; kubelet and pod/service proxy calls do not work here)")
        dest = self.routes.get().get(key)
        if dest is None:
            raise Refused(503, f"{target}: Service {key} has no route (no process serves it; "
                               f"hack/cluster/route.sh add {key} <hostport>)")
        return key, dest

    def handle(self, conn):
        upstream = None
        target = "?"
        try:
            conn.settimeout(10)
            head, rest = read_head(conn)
            line = head.split("\r\n", 1)[0]
            parts = line.split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                raise Refused(400, f"{line[:100]!r}: not an HTTP/1 request line")
            method, target, _ = parts
            if method == "GET" and target == "/healthz":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                             b"Connection: close\r\n\r\nok\n")
                return
            if method != "CONNECT":
                raise Refused(405, f"{method} {target[:100]}: only CONNECT is supported")
            key, dest = self.resolve(target)
            try:
                upstream = socket.create_connection(dest, timeout=DIAL_TIMEOUT)
            except OSError as e:
                raise Refused(502, f"{target}: Service {key} routes to {dest[0]}:{dest[1]}, which does "
                                   f"not answer ({e.strerror or e})")
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            log(f"ACCEPT {target} = {key} -> {dest[0]}:{dest[1]}")
            conn.settimeout(None)
            upstream.settimeout(None)
            if rest:
                upstream.sendall(rest)
            t = threading.Thread(target=pipe, args=(upstream, conn), daemon=True)
            t.start()
            pipe(conn, upstream)
            t.join()
        except Refused as e:
            log(f"REFUSE {e.reason}")
            reason = "cluster-network refused " + e.reason.replace("\r", " ").replace("\n", " ")
            with contextlib.suppress(OSError):
                conn.sendall(f"HTTP/1.1 {e.code} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                             .encode("utf-8", "replace"))
        except (OSError, ConnectionError) as e:
            log(f"ERROR {target}: {e}")
        finally:
            if upstream is not None:
                upstream.close()
            conn.close()


def serve_main(args):
    path = args.socket
    if len(path.encode()) > 107:
        print(f"socket path too long for a Unix socket ({len(path)} > 107 bytes): {path}", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            print(f"another process already listens on {path}", file=sys.stderr)
            return 1
        except OSError:
            os.unlink(path)  # stale, from a killed run
        finally:
            probe.close()
    proxy = Proxy(Routes(args.routes),
                  Services(args.server, args.cacert, args.cert, args.key, args.ttl))
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)  # only this user (the apiserver's) may connect
    try:
        srv.bind(path)
    finally:
        os.umask(old)
    srv.listen(128)
    ino = os.stat(path).st_ino

    def stop(signum, _frame):
        log(f"signal {signum}: stopping")
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == ino:
                os.unlink(path)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"listening on {path}; routes from {args.routes}; Services from {args.server} (ttl {args.ttl}s)")
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=proxy.handle, args=(conn,), daemon=True).start()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--socket", required=True)
    s.add_argument("--routes", required=True)
    s.add_argument("--server", required=True)
    s.add_argument("--cacert", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--ttl", type=float, default=2.0)
    r = sub.add_parser("route")
    r.add_argument("--routes", required=True)
    rs = r.add_subparsers(dest="action", required=True)
    a = rs.add_parser("add")
    a.add_argument("key")
    a.add_argument("target")
    d = rs.add_parser("remove")
    d.add_argument("key")
    rs.add_parser("list")
    args = p.parse_args(argv)
    return serve_main(args) if args.cmd == "serve" else route_main(args)


if __name__ == "__main__":
    sys.exit(main())
