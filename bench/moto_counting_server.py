"""A moto S3 server that counts what clients send it (and what it sends back): ``python bench/moto_counting_server.py PORT``.

Counting on the server side measures atomicsite and ``aws s3 sync`` the same way. ``GET /__bench``
returns the counters as JSON; ``POST /__bench/reset`` zeroes them.
"""

import json
import sys
import threading
import time

from moto.server import ThreadedMotoServer


class Counter:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.by_method = {}
        self.bytes_by_kind = {}  # request bytes per kind of key (claims, manifests, …): the bench's byte bound

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__bench"):
            if environ["REQUEST_METHOD"] == "POST":
                with self.lock:
                    self.reset()
            body = json.dumps({"requests": self.requests, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                               "by_method": self.by_method, "bytes_by_kind": self.bytes_by_kind}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        with self.lock:
            self.requests += 1
            self.bytes_in += length
            method = environ["REQUEST_METHOD"]
            self.by_method[method] = self.by_method.get(method, 0) + 1
            kind = "delete-batch" if method == "POST" and "delete" in environ.get("QUERY_STRING", "") else _kind(path)
            self.bytes_by_kind[kind] = self.bytes_by_kind.get(kind, 0) + length
        return self._counted(self.app(environ, start_response))

    def _counted(self, body):
        """Response body bytes (what clients download: objects, listing XML), counted as sent."""
        for chunk in body:
            with self.lock:
                self.bytes_out += len(chunk)
            yield chunk
        if hasattr(body, "close"):
            body.close()


def _kind(path: str) -> str:
    """``claims``, ``manifests``, ``summaries``, ``channels``, … for atomicsite's metadata; ``other`` else."""
    marker = "/_atomicsite/"
    if marker not in path:
        return "other"
    return path.split(marker, 1)[1].split("/", 1)[0]


def main():
    port = int(sys.argv[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    server._server.app = Counter(server._server.app)  # werkzeug reads server.app per request
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
