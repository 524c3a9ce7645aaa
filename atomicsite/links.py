"""The broken-reference gate: every same-site reference in a build must name a file of that build.

Before anything is uploaded, each HTML page and stylesheet of the scanned build is read and every
reference it makes to the same site (``src``, ``srcset``, ``href``, ``poster``, ``style`` and
``<style>`` ``url()``, CSS ``url()`` and ``@import``) is resolved as a browser would (against the
page, or its ``<base href>``) and then looked up by the router's clean-URL rules
(:func:`atomicsite.serve.resolve.lookup`: ``/about`` → ``about``, ``about.html`` or
``about/index.html``). External URLs, ``data:``, ``mailto:`` and other schemes, protocol-relative
``//host/`` URLs, fragments and query strings are not checked.

References come in two kinds, each with its own level (``error``, ``warn`` or ``off``):

- **resources** a page loads (scripts, stylesheets, images, fonts, media, preloads, CSS urls):
  ``error`` by default, because a page without its stylesheet or chunk is broken;
- **pages** a visitor may follow (``<a href>``, ``<area href>``, ``<iframe src>``, other ``<link>``
  relations): ``warn`` by default, because a dead link is bad but the page still works.

>>> report = check_links(scan("dist"))                        # doctest: +SKIP
>>> [(f.page, f.ref) for f in report.errors]
[('index.html', '/assets/app.1f2e3d4c.js')]
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

from .errors import EXIT_BROKEN_REFERENCES, AtomicsiteError, BuildDirError, ConfigError
from .headers import is_html
from .link_cache import LinkCache

LEVELS = ("error", "warn", "off")
RESOURCE = "resource"
PAGE = "page"

# Link relations that make the page load the target: anything else (canonical, alternate, next…) is a
# page link; preconnect and dns-prefetch name an origin, not a file.
_RESOURCE_RELS = frozenset({"stylesheet", "preload", "modulepreload", "prefetch", "icon", "apple-touch-icon",
                            "apple-touch-icon-precomposed", "mask-icon", "manifest"})
_ORIGIN_RELS = frozenset({"preconnect", "dns-prefetch"})
_PAGE_TAGS = frozenset({"a", "area", "iframe", "frame"})
_QUERY_OR_FRAGMENT = re.compile(r"[?#]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_SRCSET_URL = re.compile(r"[\s,]*(\S+)")
_CSS_HINT = re.compile(r"url\(|@import", re.I)
_CSS_TOKEN_START = re.compile(r"""[uU@"']""")
# A CSS token at a given place: url(...) with or without quotes, @import "x", or any other string,
# which is skipped, so content: "url(x)" is not a reference. (@import url(x) is a url() token.)
_DQ, _SQ = r'"((?:[^"\\\n]|\\.)*)"', r"'((?:[^'\\\n]|\\.)*)'"
_CSS_TOKENS = re.compile(rf"""url\(\s*(?:{_DQ}|{_SQ}|([^)'"\s]*))\s*\)|@import\s+(?:{_DQ}|{_SQ})|{_DQ}|{_SQ}""", re.I)


@dataclass(frozen=True)
class LinkSettings:
    """The ``[links]`` table: ``LinkSettings(resources="error", pages="warn", ignore=("/api/*",))``.

    ``ignore`` globs are matched against the referenced site path (``/api/v1/x``): a glob without
    ``/`` matches its last segment, one with ``/`` the whole path (``*`` crosses ``/``).
    """

    resources: str = "error"
    pages: str = "warn"
    ignore: tuple[str, ...] = ()

    @property
    def off(self) -> bool:
        """Both levels off: the gate reads nothing (and keeps no cache)."""
        return self.resources == "off" and self.pages == "off"

    def __post_init__(self):
        for key in ("resources", "pages"):
            if getattr(self, key) not in LEVELS:
                raise ConfigError(f"links.{key}: {getattr(self, key)!r} is not error, warn or off",
                                  hint="Set it to \"error\", \"warn\" or \"off\".")

    @classmethod
    def from_mapping(cls, table: Mapping, where: str = "links") -> LinkSettings:
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: must be a table with resources, pages, ignore")
        unknown = set(table) - {"resources", "pages", "ignore"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}", hint="Known keys: resources, pages, ignore.")
        ignore = table.get("ignore", ())
        if not isinstance(ignore, (list, tuple)) or not all(isinstance(g, str) and g for g in ignore):
            raise ConfigError(f"{where}.ignore: must be a list of glob strings", hint='e.g. ignore = ["/api/*"].')
        try:
            return cls(str(table.get("resources", "error")), str(table.get("pages", "warn")), tuple(ignore))
        except ConfigError as exc:
            raise ConfigError(exc.message.replace("links.", f"{where}.", 1), hint=exc.hint) from None


@dataclass(frozen=True)
class Finding:
    """One reference that names no file of the build: ``page`` → ``ref`` (as written)."""

    page: str
    ref: str
    target: str  # the site path it resolves to, e.g. "assets/app.js"
    kind: str  # RESOURCE or PAGE
    level: str  # "error" or "warn"

    def to_dict(self) -> dict:
        return {"page": self.page, "ref": self.ref, "target": "/" + self.target, "kind": self.kind,
                "level": self.level}

    def __str__(self) -> str:
        return f"{self.page} → {self.ref}"


@dataclass(frozen=True)
class LinkReport:
    findings: tuple[Finding, ...] = ()
    documents: int = 0  # HTML pages and stylesheets read
    references: int = 0  # same-site references checked
    settings: LinkSettings = field(default_factory=LinkSettings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "warn")

    @property
    def refused(self) -> bool:
        return bool(self.errors)

    def to_dict(self) -> dict:
        return {"documents": self.documents, "references": self.references, "refused": self.refused,
                "errors": len(self.errors), "warnings": len(self.warnings),
                "findings": [f.to_dict() for f in self.findings]}


class BrokenReferences(AtomicsiteError):
    """The build references files it does not contain; nothing was uploaded."""

    exit_code = EXIT_BROKEN_REFERENCES
    kind = "broken_references"

    def __init__(self, report: LinkReport):
        self.report = report
        errors = report.errors
        shown = "; ".join(str(f) for f in errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        super().__init__(
            f"the build has {len(errors)} reference(s) to files it does not contain ({shown}); nothing was uploaded.",
            hint="Fix the build, or list every finding with 'atomicsite publish --dry-run'; "
                 "[links] in the config sets the levels and ignore globs.",
        )

    def to_json(self) -> dict:
        return {**super().to_json(), "links": self.report.to_dict()}


# ---- extraction -------------------------------------------------------------------------------------

def css_references(text: str) -> list[str]:
    """``url()`` and ``@import`` targets of a stylesheet (comments removed, quotes and escapes undone)."""
    if not _CSS_HINT.search(text):
        return []
    if "/*" in text:
        text = _CSS_COMMENT.sub("", text)
    refs, pos = [], 0
    # Jump between the characters a token can start with, then match the token there: Python's re
    # scans a character class about 4x faster than it tries an alternation at every position.
    while (start := _CSS_TOKEN_START.search(text, pos)) is not None:
        m = _CSS_TOKENS.match(text, start.start())
        if m is None:
            pos = start.start() + 1
            continue
        pos = m.end()
        ref = next((g for g in m.groups()[:5] if g is not None), None)  # groups 6-7: a bare string
        if ref and ref.strip():
            refs.append(re.sub(r"\\(.)", r"\1", ref).strip() if "\\" in ref else ref.strip())
    return refs


def srcset_urls(value: str) -> list[str]:
    """The URLs of a ``srcset`` (HTML's candidate rules: a URL runs to whitespace and loses trailing
    commas; descriptors run to the next comma), so ``a.png, b.png`` is two URLs and ``img,v=2.png``
    one."""
    if "," not in value:
        return value.split()[:1]
    urls, pos, n = [], 0, len(value)
    while pos < n:
        m = _SRCSET_URL.match(value, pos)
        if not m:
            break
        url = m.group(1)
        pos = m.end()
        if url.endswith(","):
            url = url.rstrip(",")
        else:  # skip the descriptors up to the next comma
            comma = value.find(",", pos)
            pos = n if comma < 0 else comma + 1
        if url:
            urls.append(url)
    return urls


_REF_SELECTOR = "[href],[src],[srcset],[imagesrcset],[poster],[style],style"


def html_references(html: bytes | str) -> tuple[str | None, list[tuple[str, str]]]:
    """(``<base href>``, [(kind, ref), …]) of one HTML document, parsed with lexbor (selectolax)."""
    from selectolax.lexbor import LexborHTMLParser  # C extension, loaded when the gate first runs

    base: str | None = None
    refs: list[tuple[str, str]] = []
    seen: set[int] = set()
    # One query for every attribute (lexbor returns a node once per selector it matches, hence
    # ``seen``): a third of the time of one query per attribute on the synthetic site.
    for node in LexborHTMLParser(html).css(_REF_SELECTOR):
        if node.mem_id in seen:
            continue
        seen.add(node.mem_id)
        tag, attrs = node.tag, node.attributes
        if tag == "style":
            refs.extend((RESOURCE, u) for u in css_references(node.text(deep=True)))
        if (value := attrs.get("href")):
            if tag == "base":
                base = value if base is None else base
            elif tag == "link":
                rels = set((attrs.get("rel") or "").lower().split())
                if not rels & _ORIGIN_RELS:
                    refs.append((RESOURCE if rels & _RESOURCE_RELS else PAGE, value))
            elif tag in _PAGE_TAGS:
                refs.append((PAGE, value))
            elif tag in ("use", "image", "feimage"):  # SVG: <use href="sprite.svg#icon">
                refs.append((RESOURCE, value))
        if (value := attrs.get("src")):
            refs.append((PAGE if tag in _PAGE_TAGS else RESOURCE, value))
        for attr in ("srcset", "imagesrcset"):
            if (value := attrs.get(attr)):
                refs.extend((RESOURCE, u) for u in srcset_urls(value))
        if tag == "video" and (value := attrs.get("poster")):
            refs.append((RESOURCE, value))
        if (value := attrs.get("style")):
            refs.extend((RESOURCE, u) for u in css_references(value))
    return base, refs


# ---- resolution -------------------------------------------------------------------------------------

def resolve_reference(ref: str, base_url: str) -> str | None:
    """The site path (``assets/app.js``) ``ref`` names when read at ``base_url`` (``/docs/page.html``,
    percent-encoded as in a URL), or None when it is not a same-site file reference (another origin,
    a scheme, only a fragment or query)."""
    joined = _join(ref, base_url)
    return unquote(joined) if joined and "%" in joined else joined


def _join(ref: str, base_url: str) -> str | None:
    """``resolve_reference`` without the percent-decoding.

    RFC 3986 resolution for the one case that matters here (a path, against a path), written out
    because ``urllib.parse.urljoin`` was most of the gate's time on a large site.
    """
    ref = ref.strip()
    if "\t" in ref or "\n" in ref or "\r" in ref or "\\" in ref:  # as browsers read an http(s) URL
        ref = ref.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    if not ref or ref[0] in "#?" or ref.startswith("//") or (":" in ref and _SCHEME.match(ref)):
        return None
    cut = _QUERY_OR_FRAGMENT.search(ref)
    path = ref[:cut.start()] if cut else ref
    if path[0] != "/":
        path = base_url[: base_url.rfind("/") + 1] + path
    is_dir = path.endswith(("/", "/.", "/..")) or path in (".", "..")
    path = posixpath.normpath(path).lstrip("/")  # drops dot segments, clamps '..' at the root
    if path == ".":
        path = ""
    if is_dir and path:
        path += "/"
    return path


def _document_base(page: str, base: str | None) -> str | None:
    """The URL a page's relative references resolve against; None when <base> names another origin."""
    page_url = "/" + quote(page)
    base = (base or "").strip()
    if _SCHEME.match(base) or base.startswith("//"):
        return None  # <base href="https://cdn.example/"> sends every relative reference elsewhere
    joined = _join(base, page_url) if base else None
    return page_url if joined is None else "/" + joined


class _Ignore:
    def __init__(self, globs: Iterable[str]):
        globs = tuple(globs)
        self._names = [g for g in globs if "/" not in g]
        self._paths = [g if g.startswith("/") else "/" + g for g in globs if "/" in g]

    def __call__(self, target: str) -> bool:
        path = "/" + target
        name = posixpath.basename(target.rstrip("/"))
        return (any(fnmatch.fnmatchcase(name, g) for g in self._names)
                or any(fnmatch.fnmatchcase(path, g) for g in self._paths))


def _is_css(content_type: str) -> bool:
    return content_type.lower().startswith("text/css")


def check_links(files: Iterable, settings: LinkSettings | None = None, rules=None,
                cache: LinkCache | None = None) -> LinkReport:
    """Check every HTML page and stylesheet of a scanned build (``scan()``'s ScannedFiles).

    A reference resolves when the router would answer it: a file, a directory it redirects to
    (``/docs`` → ``/docs/``), or a redirect or rewrite among the version's ``rules``
    (atomicsite.routing). Never raises for findings: :func:`gate` decides whether they refuse the publish.
    With a ``cache`` (atomicsite.link_cache), a page whose path and sha256 it holds is not read again:
    only its resolved targets are checked against this build.
    """
    # Imported here: atomicsite.serve's package imports config, which imports this module.
    from .routing.route import NOT_FOUND, route
    from .routing.site import SiteRules

    rules = rules or SiteRules()

    settings = settings or LinkSettings()
    files = list(files)
    if settings.off:
        return LinkReport(settings=settings)
    by_path = {f.entry.path: f.entry for f in files}
    ignored = _Ignore(settings.ignore)
    levels = {RESOURCE: settings.resources, PAGE: settings.pages}
    findings: dict[tuple[str, str, str], Finding] = {}
    documents = references = 0
    # (directory, ref) → its target or None (not checked): nav bars and shared assets repeat the
    # same references on every page of a real site
    resolved: dict[tuple[str, str], str | None] = {}
    checked: dict[str, bool] = {}  # target → the router answers it (or it is ignored)
    cached_ok: dict[int, bool] = {}  # the same, by index in the cache's target table

    def found(target: str) -> bool:
        ok = checked.get(target)
        if ok is None:
            # a file at the path is always answered (by itself, or by a forced rule): no need to route
            ok = checked[target] = (target in by_path or route(by_path, rules, target).kind != NOT_FOUND
                                    or ignored(target))
        return ok

    for f in files:
        entry = f.entry
        if is_html(entry):
            page = True
        elif _is_css(entry.content_type):
            page = False
        else:
            continue
        documents += 1
        cached = cache.get(entry.path, entry.sha256) if cache is not None else None
        if cached is not None:
            counted = _check_cached(cached, cache.targets, cached_ok, levels, found)
            if counted is not None:
                references += counted
                continue
            # a target is missing: read the page again, below, so each finding names the reference
            # as written
        refs = _document_targets(f.source, entry.path, page, resolved)
        if cache is not None:
            cache.put(entry.path, entry.sha256, [(kind == RESOURCE, t) for kind, _, t in refs])
        for kind, ref, target in refs:
            level = levels[kind]
            if level == "off":
                continue
            references += 1
            if not found(target):
                findings.setdefault((entry.path, ref, kind), Finding(entry.path, ref, target, kind, level))
    ordered = tuple(sorted(findings.values(), key=lambda f: (f.level != "error", f.page, f.ref)))
    return LinkReport(ordered, documents, references, settings)


def _check_cached(row: list, table: list[str], ok: dict[int, bool], levels: dict[str, str],
                  found) -> int | None:
    """The references counted for a page's cached row (``[sha256, i, …]``, atomicsite.link_cache),
    or None when one of its targets is not found."""
    resources, pages = levels[RESOURCE] != "off", levels[PAGE] != "off"
    counted = 0
    try:
        for n in range(1, len(row)):
            i = row[n]
            if i >= 0:
                if not resources:
                    continue
            else:
                if not pages:
                    continue
                i = ~i
            counted += 1
            hit = ok.get(i)
            if hit is None:
                if type(i) is not int or i >= len(table):
                    return None  # not an index this code writes: read the page again
                hit = ok[i] = found(table[i])
            if not hit:
                return None
    except TypeError:  # a row holding something other than numbers
        return None
    return counted


def _document_targets(source: Path, path: str, page: bool,
                      resolved: dict[tuple[str, str], str | None]) -> list[tuple[str, str, str]]:
    """(kind, reference as written, site path it resolves to) of every same-site reference of one
    HTML page (``page``) or stylesheet, in document order, whatever the levels (so they can be cached)."""
    if page:
        base, refs = html_references(_read(source))
        base_url = _document_base(path, base)  # <style> and style="" urls use it too
    else:
        refs = [(RESOURCE, r) for r in css_references(_read(source).decode("utf-8", "replace"))]
        base_url = "/" + quote(path)  # a stylesheet's urls are relative to the stylesheet
    if base_url is None:
        return []
    directory = base_url[: base_url.rfind("/") + 1]
    out = []
    for kind, ref in refs:
        key = ("", ref) if ref[:1] == "/" else (directory, ref)
        if key in resolved:
            target = resolved[key]
        else:
            target = resolved[key] = resolve_reference(ref, base_url)
        if target is not None:
            out.append((kind, ref, target))
    return out


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise BuildDirError(f"{path}: cannot read it ({exc.strerror}).",
                            hint="Did the build dir change during publish? Run it again.") from None


def gate(files: Iterable, settings: LinkSettings | None = None, *, dry_run: bool = False, rules=None,
         cache: LinkCache | None = None) -> LinkReport:
    """:func:`check_links`, raising :class:`BrokenReferences` when a finding is at level ``error``
    (unless ``dry_run``, which returns the report for the plan to show). ``cache``: see check_links;
    saved here, findings or not (what it holds is per page, true whatever the verdict)."""
    report = check_links(files, settings, rules, cache)
    if cache is not None and not report.settings.off:  # off, it used no page: saving would empty it
        cache.save()
    if report.refused and not dry_run:
        raise BrokenReferences(report)
    return report


__all__ = ["LinkSettings", "LinkReport", "Finding", "BrokenReferences", "check_links", "gate",
           "html_references", "css_references", "srcset_urls", "resolve_reference"]
