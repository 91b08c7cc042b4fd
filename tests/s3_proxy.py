#!/usr/bin/env python3
"""A counting, fault-injecting HTTP proxy for tests/s3.rs (issue #34).

Usage: s3_proxy.py UPSTREAM_PORT COUNTS_FILE FAIL_FIRST

Listens on a free port of 127.0.0.1 (printed on stdout, one line), forwards every request to
127.0.0.1:UPSTREAM_PORT, and answers the first FAIL_FIRST requests with 503 instead. After each
request it rewrites COUNTS_FILE: one line per request, "METHOD PATH RANGE STATUS BYTES".
"""
import http.client
import http.server
import sys
import threading

upstream, counts_path, fail_first = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
lock = threading.Lock()
log = []


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, a delayed ACK holds every answer
    # for 40 ms, which would make each request, not each byte, the cost measured.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def record(self, status, length):
        with lock:
            log.append(f"{self.command} {self.path} {self.headers.get('Range', '-')} {status} {length}")
            with open(counts_path + ".tmp", "w") as f:
                f.write("\n".join(log) + "\n")
            import os
            os.replace(counts_path + ".tmp", counts_path)
            return len(log)

    def handle_one(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        with lock:
            failing = len(log) < fail_first
        if failing:
            self.record(503, 0)
            msg = b"<Error><Code>SlowDown</Code></Error>"
            self.send_response(503)
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items()}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.record(resp.status, len(data))
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        # A HEAD's length is the object's, not that of its (empty) body.
        length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = handle_one


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
print(server.server_address[1], flush=True)
server.serve_forever()
