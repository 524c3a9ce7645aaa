"""Content-Type and Cache-Control for each published file.

Rules are ``(glob, headers)`` pairs, checked in order; for each header the first rule that matches the
path and sets it wins, then the defaults: Content-Type from :data:`CONTENT_TYPES`, a fixed table
shipped with atomicsite, and Cache-Control ``immutable`` for fingerprinted assets
(``app.3f9a1c2b.js``, ``index-BfK2x9Qa.css``) and ``must-revalidate`` for everything else.

The table is fixed on purpose: headers are part of the version id, so they must not depend on the
machine. Python's ``mimetypes`` reads the host's tables (``/etc/mime.types``, the Windows registry):
on Debian ``.ts`` is ``text/vnd.trolltech.linguist``, so the same build would get another id, and
other headers, on a laptop than in CI. A ``[[headers]]`` rule sets any type the table lacks.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass

from .errors import ConfigError

REVALIDATE = "public, max-age=0, must-revalidate"
IMMUTABLE = "public, max-age=31536000, immutable"
DEFAULT_CONTENT_TYPE = "application/octet-stream"

CONTENT_TYPES: dict[str, str] = {
    # pages, styles, scripts, data
    ".html": "text/html", ".htm": "text/html", ".xhtml": "application/xhtml+xml",
    ".css": "text/css", ".js": "text/javascript", ".mjs": "text/javascript", ".cjs": "text/javascript",
    ".json": "application/json", ".map": "application/json", ".jsonld": "application/ld+json",
    ".geojson": "application/geo+json", ".topojson": "application/json", ".ndjson": "application/x-ndjson",
    ".webmanifest": "application/manifest+json", ".xml": "application/xml", ".xsl": "application/xslt+xml",
    ".xslt": "application/xslt+xml", ".rss": "application/rss+xml", ".atom": "application/atom+xml",
    ".txt": "text/plain", ".md": "text/markdown", ".csv": "text/csv", ".tsv": "text/tab-separated-values",
    ".yaml": "application/yaml", ".yml": "application/yaml", ".toml": "application/toml",
    ".ics": "text/calendar", ".vcf": "text/vcard", ".vtt": "text/vtt", ".srt": "application/x-subrip",
    ".appcache": "text/cache-manifest", ".wasm": "application/wasm", ".pdf": "application/pdf",
    ".rtf": "application/rtf", ".epub": "application/epub+zip",
    # images
    ".svg": "image/svg+xml", ".png": "image/png", ".apng": "image/apng", ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg", ".jpe": "image/jpeg", ".jfif": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".avif": "image/avif", ".jxl": "image/jxl", ".heic": "image/heic",
    ".heif": "image/heif", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".ico": "image/x-icon", ".cur": "image/x-icon",
    # fonts
    ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
    # audio and video (".ts" is an MPEG transport stream segment on a web site, not Qt Linguist)
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg",
    ".mov": "video/quicktime", ".mkv": "video/x-matroska", ".avi": "video/x-msvideo",
    ".ts": "video/mp2t", ".m2ts": "video/mp2t", ".m4s": "video/iso.segment",
    ".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml",
    ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".ogg": "audio/ogg",
    ".oga": "audio/ogg", ".opus": "audio/ogg", ".wav": "audio/wav", ".flac": "audio/flac",
    ".mid": "audio/midi", ".midi": "audio/midi",
    # 3D
    ".glb": "model/gltf-binary", ".gltf": "model/gltf+json", ".obj": "model/obj", ".stl": "model/stl",
    ".usdz": "model/vnd.usdz+zip",
    # downloads
    ".zip": "application/zip", ".gz": "application/gzip", ".tgz": "application/gzip",
    ".tar": "application/x-tar", ".bz2": "application/x-bzip2", ".xz": "application/x-xz",
    ".zst": "application/zstd", ".7z": "application/x-7z-compressed", ".rar": "application/vnd.rar",
    ".jar": "application/java-archive", ".apk": "application/vnd.android.package-archive",
    ".dmg": "application/x-apple-diskimage", ".exe": "application/vnd.microsoft.portable-executable",
    ".msi": "application/x-msi", ".deb": "application/vnd.debian.binary-package",
    ".rpm": "application/x-rpm", ".iso": "application/x-iso9660-image",
    ".doc": "application/msword", ".xls": "application/vnd.ms-excel", ".ppt": "application/vnd.ms-powerpoint",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text", ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".ps": "application/postscript", ".eps": "application/postscript",
    # keys and signatures served from /.well-known and download pages
    ".pem": "application/x-pem-file", ".crt": "application/x-x509-ca-cert", ".cer": "application/pkix-cert",
    ".asc": "application/pgp-signature", ".sig": "application/pgp-signature",
}
_NEEDS_CHARSET = ("text/", "application/json", "application/manifest+json", "application/xml",
                  "application/rss+xml", "application/atom+xml", "image/svg+xml", "application/ld+json",
                  "application/geo+json", "application/yaml", "application/toml", "application/xhtml+xml",
                  "application/xslt+xml", "application/x-ndjson")
_PAGES = (".html", ".htm", ".xhtml")

# A fingerprint is a name segment between '.'/'-' and the extension (a '.min' may follow it, as in
# MkDocs' main.6543a935.min.css): 8-64 hex chars, or 8-22 base64url chars (Vite, esbuild).
_HEX = re.compile(r"[0-9a-f]{8,64}")
_B64 = re.compile(r"[A-Za-z0-9_]{8,22}")
_FINGERPRINT = re.compile(r"[.-](?P<hash>[A-Za-z0-9_]{8,64})(\.min)?\.[A-Za-z0-9]+(\.map)?$")
_CLASS = str.maketrans("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_",
                       "0" * 10 + "a" * 26 + "A" * 26 + "_")


def content_type_for(path: str) -> str:
    """``app.js`` → ``text/javascript; charset=utf-8``, from :data:`CONTENT_TYPES` only."""
    return _content_type_of(path.rpartition("/")[2].lower())


def _content_type_of(lower_name: str) -> str:
    # the extension as posixpath.splitext gives it (leading dots do not start one: .htaccess has none),
    # without its calls: this runs once per file of every scan
    dot = lower_name.rfind(".")
    ext = lower_name[dot:] if dot > 0 and lower_name[:dot].strip(".") else ""
    ctype = CONTENT_TYPES.get(ext, DEFAULT_CONTENT_TYPE)
    if ctype.startswith(_NEEDS_CHARSET) and "charset" not in ctype:
        ctype += "; charset=utf-8"
    return ctype


def _runs(text: str) -> int:
    """How many runs of one character class (digit, lower, upper) ``text`` has: ``ab12Cd`` → 4."""
    classes = text.translate(_CLASS)
    return 1 + sum(1 for a, b in zip(classes, classes[1:]) if a != b)


def looks_like_hash(segment: str) -> bool:
    """A content hash, not a word or a number: ``3f9a1c2b`` and ``BfK2x9Qa`` are; ``20241201``
    (only digits), ``sale2024``, ``cafe2024`` and ``SummerSale`` are not.

    Hex needs letters and digits mixed (3+ runs), as any hash but almost no word or date has.
    Base64url needs upper case, lower case and a digit, changing class at least every other
    character (a random 8-char hash has ~5.5 runs; camel-case words have about one per 3 chars).
    A real hash that fails this only loses the year-long cache, which is the safe way to be wrong.
    """
    if _HEX.fullmatch(segment):
        return any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment) and _runs(segment) >= 3
    if _B64.fullmatch(segment):
        if not (any(c.isdigit() for c in segment) and any(c.islower() for c in segment)
                and any(c.isupper() for c in segment)):
            return False
        return _runs(segment) >= max(4, len(segment) // 2)
    return False


def is_html(entry) -> bool:
    """Whether a file (anything with a ``content_type``, such as a manifest entry) is an HTML page."""
    ct = entry.content_type.lower()
    return ct.startswith("text/html") or ct.startswith("application/xhtml+xml")


def is_fingerprinted(path: str) -> bool:
    """Whether ``path``'s name carries a content hash, so its bytes can never change under it.

    Pages never count (``index.3f9a1c2b.html`` is still fetched by a stable URL a visitor types).
    """
    name = path.rpartition("/")[2]
    return _fingerprinted(name, name.lower())


def _fingerprinted(name: str, lower_name: str) -> bool:
    if lower_name.endswith(_PAGES):
        return False
    m = _FINGERPRINT.search(name)
    return bool(m) and looks_like_hash(m.group("hash"))


@dataclass(frozen=True)
class HeaderRule:
    """``HeaderRule("*.html", cache_control="no-cache")``: glob over the POSIX path in the build dir.

    A glob without ``/`` matches the file name anywhere; with ``/`` it matches the whole path
    (``assets/*``). ``**`` is not special: ``*`` already crosses ``/`` in these globs.
    """

    glob: str
    content_type: str | None = None
    cache_control: str | None = None

    def __post_init__(self):
        if not self.glob:
            raise ConfigError("a header rule has an empty 'match' glob", hint="Give each [[headers]] rule a match glob.")
        if self.content_type is None and self.cache_control is None:
            raise ConfigError(
                f"header rule {self.glob!r} sets nothing",
                hint="Give it content_type and/or cache_control.",
            )

    def matches(self, path: str) -> bool:
        target = path if "/" in self.glob else posixpath.basename(path)
        return fnmatch.fnmatchcase(target, self.glob)


@dataclass(frozen=True)
class Headers:
    content_type: str
    cache_control: str


def headers_for(path: str, rules: tuple[HeaderRule, ...] = ()) -> Headers:
    ctype = ccontrol = None
    for rule in rules:
        if rule.matches(path):
            ctype = ctype or rule.content_type
            ccontrol = ccontrol or rule.cache_control
            if ctype and ccontrol:
                break
    if not (ctype and ccontrol):
        name = path.rpartition("/")[2]
        lower = name.lower()
        ctype = ctype or _content_type_of(lower)
        ccontrol = ccontrol or (IMMUTABLE if _fingerprinted(name, lower) else REVALIDATE)
    return Headers(content_type=ctype, cache_control=ccontrol)
