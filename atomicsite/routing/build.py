"""Read a build dir's rules (``_redirects``, ``_headers``) with the config's, before anything is hashed.

Publish calls :func:`scan_site` in place of ``scan``: a bad rule line stops it before any upload, the
two rule files are not published as files (scan skips them), and Content-Type / Cache-Control set by
``_headers`` become the files' object metadata, unless a ``[[headers]]`` ``match`` rule of the config
sets that header for the file (config wins, as netlify.toml does over ``_headers``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..errors import BuildDirError
from ..manifest import FileEntry
from .redirects import parse_redirects
from .response_headers import HeaderBlock, headers_for_path, parse_headers
from .site import SiteRules

RULE_FILES = ("_redirects", "_headers")


def _read(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BuildDirError(f"{path}: not UTF-8 text.", hint="Save it as UTF-8.") from None
    except OSError as exc:
        raise BuildDirError(f"{path}: cannot read it ({exc.strerror}).") from None


def load_site_rules(build_dir: str | Path, *, redirects=(), headers=()) -> SiteRules:
    """The build dir's ``_redirects`` / ``_headers`` rules, then the config's (which come after)."""
    root = Path(build_dir)
    file_redirects, file_headers = (), ()
    text = _read(root / "_redirects")
    if text is not None:
        file_redirects = parse_redirects(text, str(root / "_redirects"))
    text = _read(root / "_headers")
    if text is not None:
        file_headers = parse_headers(text, str(root / "_headers"))
    return SiteRules(tuple(file_redirects) + tuple(redirects), tuple(file_headers) + tuple(headers))


def urls_of(path: str) -> list[str]:
    """The URLs a file answers at, least specific last: ``docs/index.html`` → ``/docs/index.html``, ``/docs/``."""
    urls = ["/" + path]
    if path == "index.html" or path.endswith("/index.html"):
        urls.append("/" + path[: -len("index.html")])
    elif path.endswith(".html"):
        urls.append("/" + path[: -len(".html")])
    return urls


STORED_EXTRA = ("content-disposition", "content-language")
"""Headers of ``_headers`` rules that S3 and GCS objects also carry (atomicsite.stores.base.EXTRA_HEADERS),
so a bucket or CDN serving the tree without the router sends them too."""


def object_headers(blocks: tuple[HeaderBlock, ...], path: str,
                   names: tuple[str, ...] = ("content-type", "cache-control")) -> dict[str, str]:
    """Content-Type / Cache-Control (or ``names``) the ``_headers`` rules give a file (lower-case names)."""
    out: dict[str, str] = {}
    for url in urls_of(path):
        for key, (_, value) in headers_for_path(blocks, url).items():
            if key in names:
                out[key] = value
    return out


def with_object_headers(entry: FileEntry, blocks: tuple[HeaderBlock, ...], match_rules=()) -> FileEntry:
    if not blocks:
        return entry
    found = object_headers(blocks, entry.path)
    if not found:
        return entry
    matched = [r for r in match_rules if r.matches(entry.path)]
    changes = {}
    if "content-type" in found and not any(r.content_type for r in matched):
        changes["content_type"] = found["content-type"]
    if "cache-control" in found and not any(r.cache_control for r in matched):
        changes["cache_control"] = found["cache-control"]
    return replace(entry, **changes) if changes else entry


def scan_site(build_dir: str | Path, settings, *, on_file: Callable[[int], None] | None = None,
              on_ignored: Callable[[str], None] | None = None, md5: bool = True):
    """``(scanned files, SiteRules)`` for a build dir under ``settings`` (atomicsite.config.Settings);
    ``md5`` as :func:`atomicsite.scan.scan` takes it."""
    from ..scan import scan

    rules = load_site_rules(build_dir, redirects=settings.redirects, headers=settings.response_headers)
    files = scan(build_dir, rules=settings.rules, ignore=settings.ignore, on_file=on_file, on_ignored=on_ignored,
                 md5=md5)
    if rules.headers:
        files = [f.with_entry(with_object_headers(f.entry, rules.headers, settings.rules)) for f in files]
    return files, rules
