"""The pull request comment the GitHub Action keeps: one per preview channel, updated on every push.

GitHub REST API, with the job's token, through the standard library (urllib), three calls:

- ``GET  /repos/{owner}/{repo}/issues/{number}/comments?per_page=100&page=N`` (following ``Link: rel="next"``)
  to find our comment by a hidden marker (``<!-- atomicsite-preview:pr-12 -->``);
- ``POST /repos/{owner}/{repo}/issues/{number}/comments`` ``{"body": …}`` to create it (201);
- ``PATCH /repos/{owner}/{repo}/issues/comments/{id}`` ``{"body": …}`` to update it (200).

Each request carries ``Authorization: Bearer <token>``, ``Accept: application/vnd.github+json``,
``X-GitHub-Api-Version: 2022-11-28`` and a ``User-Agent`` (GitHub refuses requests without one). The base
URL is ``$GITHUB_API_URL`` (GitHub Enterprise Server sets it; so do the tests, for their stand-in).

A comment that cannot be written (no ``pull-requests: write`` permission, a fork's read-only token, the
API down) never fails the deploy: the action reports it as a warning.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 30  # 3000 comments: past that, a new comment is better than a long crawl
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class CommentError(Exception):
    """The comment could not be read or written; ``str()`` is one line for a warning annotation."""


def marker(channel: str) -> str:
    """The hidden line that marks our comment for ``channel`` (channel names cannot contain ``-->``)."""
    return f"<!-- atomicsite-preview:{channel} -->"


@dataclass(frozen=True)
class GitHubApi:
    """``GitHubApi("https://api.github.com", token, "acme/site")``: the few calls the comment needs."""

    base_url: str
    token: str
    repository: str  # owner/name
    timeout: float = 30.0

    def request(self, method: str, url_or_path: str, body: dict | None = None) -> tuple[object, dict]:
        """One call: the decoded JSON answer and the response headers; CommentError on any failure."""
        url = url_or_path if "://" in url_or_path else self.base_url.rstrip("/") + url_or_path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self.token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "atomicsite-action",
            **({"Content-Type": "application/json"} if data is not None else {}),
        })
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                text = resp.read()
                return (json.loads(text) if text else None), dict(resp.headers.items())
        except urllib.error.HTTPError as exc:
            detail = _message(exc)
            hint = {401: " (the token was refused)",
                    403: " (give the job 'permissions: pull-requests: write'; pull requests from forks get a read-only token)",
                    404: " (no such pull request, or the token cannot see the repository)"}.get(exc.code, "")
            raise CommentError(f"GitHub answered {method} {_path(url)} with HTTP {exc.code}{': ' + detail if detail else ''}{hint}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CommentError(f"GitHub API {method} {_path(url)} failed: {getattr(exc, 'reason', exc)}") from None

    def find_comment(self, number: str, mark: str) -> dict | None:
        """Our comment on the PR (the first whose body starts with ``mark``), following pagination."""
        url: str | None = f"/repos/{self.repository}/issues/{number}/comments?per_page={PER_PAGE}"
        for _ in range(MAX_PAGES):
            if not url:
                break
            page, headers = self.request("GET", url)
            if not isinstance(page, list):
                raise CommentError(f"GitHub API listed comments as {type(page).__name__}, not a list")
            for comment in page:
                if isinstance(comment, dict) and str(comment.get("body") or "").startswith(mark):
                    return comment
            link = {k.lower(): v for k, v in headers.items()}.get("link", "")
            found = _NEXT.search(link)
            url = found.group(1) if found else None
        return None

    def upsert(self, number: str, mark: str, body: str, *, create: bool = True) -> tuple[str, str]:
        """Update our comment, or create it (when ``create``): ``("updated" | "created" | "none", html_url)``."""
        existing = self.find_comment(number, mark)
        if existing is not None:
            answer, _ = self.request("PATCH", f"/repos/{self.repository}/issues/comments/{existing['id']}", {"body": body})
            return "updated", str((answer or {}).get("html_url") or existing.get("html_url") or "")
        if not create:
            return "none", ""
        answer, _ = self.request("POST", f"/repos/{self.repository}/issues/{number}/comments", {"body": body})
        return "created", str((answer or {}).get("html_url") or "")


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return " ".join(str(json.loads(exc.read()).get("message", "")).split())[:200]
    except Exception:  # the error body is a courtesy
        return ""


def _path(url: str) -> str:
    """The URL without its host, for messages (never the token: it travels in a header)."""
    return re.sub(r"^[a-z]+://[^/]+", "", url)


def _cell(text) -> str:
    text = " ".join(str(text if text is not None else "").split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _code(text) -> str:
    return f"`{_cell(text).replace('`', chr(39))}`" if text else ""


def published_body(*, channel: str, version: str, url: str | None, live: bool, reason: str | None,
                   expires: str | None, sha: str, run_url: str) -> str:
    """The comment after a publish: the preview URL first, then the version, commit, expiry and run."""
    if url:
        head = f"**Preview:** {_cell(url)}" if live else f"**Preview** {_cell(url)} **was not updated**: {_cell(reason)}"
    else:
        head = (f"Channel {_code(channel)} serves {_code(version)}." if live
                else f"Version {_code(version)} was committed but channel {_code(channel)} was not switched: {_cell(reason)}")
    rows = [("channel", _code(channel)), ("version", _code(version))]
    if sha:
        rows.append(("commit", _code(sha[:12])))
    if expires:
        rows.append(("expires", f"{_cell(expires)} (UTC); `atomicsite prune` removes it after"))
    if run_url:
        rows.append(("run", f"[logs]({run_url})"))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    note = "" if url else "\n\nSet `preview_url` in atomicsite.toml to get a link here."
    return f"{marker(channel)}\n### atomicsite preview\n\n{head}\n\n| | |\n|---|---|\n{table}{note}\n"


def removed_body(*, channel: str, version: str | None, run_url: str) -> str:
    """The comment once the pull request closed and its channel was deleted."""
    served = f" (it served {_code(version)})" if version else ""
    run = f" [logs]({run_url})" if run_url else ""
    return (f"{marker(channel)}\n### atomicsite preview\n\nThe preview channel {_code(channel)} was deleted when this "
            f"pull request closed{served}; its versions stay until `atomicsite prune`.{run}\n")


__all__ = ["GitHubApi", "CommentError", "marker", "published_body", "removed_body"]
