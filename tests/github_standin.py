"""A stand-in for the two GitHub REST API endpoints the action's PR comment uses (we wrote it; it is
not GitHub). It is strict where GitHub's documentation is specific, so a request the real API would
refuse fails here too:

- ``GET|POST /repos/{owner}/{repo}/issues/{number}/comments`` (list with ``per_page``/``page`` and a
  ``Link: <…>; rel="next"`` header, as GitHub paginates; create answers 201 with the comment);
- ``PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}`` (update answers 200).

Every request must carry ``Authorization: Bearer <token>`` (else 401), ``Accept:
application/vnd.github+json``, ``X-GitHub-Api-Version: 2022-11-28`` and a ``User-Agent`` (else 400 /
403 as GitHub answers); POST and PATCH a JSON object body with a string ``body`` and nothing else
(else 422). Anything else is 404. ``fail_with`` makes every write answer that status (a token
without ``pull-requests: write`` gets 403 from GitHub).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "ghs_standintoken0123456789"
_COMMENTS = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$")
_COMMENT = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/comments/(\d+)$")


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: object


@dataclass
class GitHubStandIn:
    """State of the fake repository: comments by issue number, every request seen."""

    comments: dict[int, list[dict]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    fail_with: int | None = None
    url: str = ""
    _next_id: int = 1000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, number: int, body: str, login: str = "someone") -> dict:
        with self._lock:
            self._next_id += 1
            comment = {"id": self._next_id, "body": body, "user": {"login": login},
                       "html_url": f"https://github.com/acme/site/pull/{number}#issuecomment-{self._next_id}"}
            self.comments.setdefault(number, []).append(comment)
            return comment

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]


def _handler(state: GitHubStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, doc, headers: dict | None = None):
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _handle(self):
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = "<not json>"
            req = Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
            state.requests.append(req)
            h = {k.lower(): v for k, v in self.headers.items()}
            if h.get("authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"message": "Bad credentials"})
            if not h.get("user-agent"):
                return self._send(403, {"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"})
            if h.get("accept") != "application/vnd.github+json" or h.get("x-github-api-version") != "2022-11-28":
                return self._send(400, {"message": "expected Accept: application/vnd.github+json and X-GitHub-Api-Version: 2022-11-28"})
            if self.command in ("POST", "PATCH"):
                if state.fail_with:
                    return self._send(state.fail_with, {"message": "Resource not accessible by integration"})
                if not h.get("content-type", "").startswith("application/json"):
                    return self._send(415, {"message": "Unsupported Media Type"})
                if not isinstance(body, dict) or set(body) != {"body"} or not isinstance(body["body"], str):
                    return self._send(422, {"message": "Invalid request: expected {\"body\": string}"})
            many, one = _COMMENTS.match(parts.path), _COMMENT.match(parts.path)
            if many and self.command == "GET":
                comments = state.comments.get(int(many.group(3)), [])
                per_page = min(int(req.query.get("per_page", ["30"])[0]), 100)
                page = int(req.query.get("page", ["1"])[0])
                chunk = comments[(page - 1) * per_page: page * per_page]
                headers = {}
                if page * per_page < len(comments):
                    headers["Link"] = f'<{state.url}{parts.path}?per_page={per_page}&page={page + 1}>; rel="next"'
                return self._send(200, chunk, headers)
            if many and self.command == "POST":
                return self._send(201, state.add(int(many.group(3)), body["body"], login="github-actions[bot]"))
            if one and self.command == "PATCH":
                for comments in state.comments.values():
                    for comment in comments:
                        if comment["id"] == int(one.group(3)):
                            comment["body"] = body["body"]
                            return self._send(200, comment)
            return self._send(404, {"message": "Not Found"})

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

    return Handler


class Server:
    """``with Server() as gh: …`` — the stand-in on 127.0.0.1, a free port; ``gh.url`` is its base URL."""

    def __enter__(self) -> GitHubStandIn:
        self.state = GitHubStandIn()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.state.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self.state

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
