"""URL rules of a site, versioned with its build: redirects and rewrites (``_redirects``,
``[[redirects]]``), response headers (``_headers``, ``[[headers]]`` with ``for``), and the routing
order every serving path follows (directory redirects, pretty URLs). See docs/serve.md.

``atomicsite.routing.build`` reads them from a build dir for publish; it is not imported here so that
the manifest can use :class:`SiteRules` without a cycle.
"""

from .patterns import PathPattern, compile_pattern, normal_path
from .redirects import Redirect, RuleError, parse_redirects, redirects_from_config
from .response_headers import HeaderBlock, header_blocks_from_config, headers_for_path, parse_headers
from .route import FILE, NOT_FOUND, REDIRECT, Route, route, static_file
from .site import SiteRules

__all__ = [
    "FILE", "NOT_FOUND", "REDIRECT", "HeaderBlock", "PathPattern", "Redirect", "Route", "RuleError", "SiteRules",
    "compile_pattern", "header_blocks_from_config", "headers_for_path", "normal_path", "parse_headers",
    "parse_redirects", "redirects_from_config", "route", "static_file",
]
