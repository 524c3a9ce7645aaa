"""Pure parts of compression: the settings (config file, environment, flag), which types get
variants, deterministic bytes, and Accept-Encoding negotiation as a table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from atomicsite.compress import DEFAULT_MIN_SIZE, CompressSettings, compress_bytes, decompress_bytes
from atomicsite.config import load_settings
from atomicsite.errors import ConfigError
from atomicsite.serve.resolve import choose_encoding


def test_off_by_default(tmp_path):
    s = load_settings(cwd=tmp_path, env={})
    assert not s.compress and s.compress.encodings == () and s.compress.min_size == DEFAULT_MIN_SIZE


def test_from_file_env_and_flag(tmp_path):
    (tmp_path / "atomicsite.toml").write_text('compress = ["gzip", "br", "gzip"]\ncompress_min_size = 512\n'
                                              'compress_types = ["text/html", "application/*+json"]\n')
    s = load_settings(cwd=tmp_path, env={})
    assert s.compress == CompressSettings(("br", "gzip"), 512, ("text/html", "application/*+json"))
    s = load_settings(cwd=tmp_path, env={"ATOMICSITE_COMPRESS": "gzip", "ATOMICSITE_COMPRESS_MIN_SIZE": "2048"})
    assert s.compress.encodings == ("gzip",) and s.compress.min_size == 2048 and s.compress.types[0] == "text/html"
    assert s.compress.brotli_quality == 11
    assert load_settings(cwd=tmp_path, env={}, config_file=None).compress.brotli_quality == 11
    assert not s.with_overrides(compress="none").compress
    assert s.with_overrides(compress="br").compress.encodings == ("br",)
    with pytest.raises(ConfigError, match="--compress: unknown encoding 'deflate'"):
        s.with_overrides(compress="br,deflate")


@pytest.mark.parametrize("content_type, size, wanted", [
    ("text/html; charset=utf-8", 2000, True), ("text/css", 1024, True), ("text/css", 1023, False),
    ("text/javascript; charset=utf-8", 5000, True), ("application/json", 5000, True),
    ("application/manifest+json", 5000, True), ("application/rss+xml", 5000, True),
    ("image/svg+xml", 5000, True), ("application/wasm", 5000, True), ("font/ttf", 5000, True),
    ("font/otf", 5000, True), ("font/woff", 5000, False), ("font/woff2", 5000, False),
    ("image/png", 5000, False), ("image/jpeg", 5000, False), ("image/webp", 5000, False),
    ("application/zip", 5000, False), ("application/gzip", 5000, False), ("video/mp4", 5000, False),
    ("application/octet-stream", 5000, False), ("TEXT/PLAIN", 5000, True),
])
def test_default_types(content_type, size, wanted):
    assert CompressSettings(("br",)).wants(content_type, size) is wanted


@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_compression_is_deterministic_and_round_trips(encoding):
    pytest.importorskip("brotli")
    data = b"<p>same input, same bytes</p>" * 100
    assert compress_bytes(data, encoding) == compress_bytes(data, encoding)
    assert decompress_bytes(compress_bytes(data, encoding), encoding) == data
    if encoding == "gzip":
        # mtime 0 and OS "unknown" in the header: the same bytes on every machine, as gzip -n makes
        header = compress_bytes(data, encoding)[:10]
        assert header[4:8] == b"\0\0\0\0" and header[9] == 0xFF


BOTH = ("br", "gzip")


@pytest.mark.parametrize("header, available, expected", [
    (None, BOTH, None), ("", BOTH, None), ("identity", BOTH, None), ("gzip", BOTH, "gzip"), ("br", BOTH, "br"),
    ("br", ("gzip",), None), ("gzip, deflate, br", BOTH, "br"), ("gzip, deflate, br, zstd", ("gzip",), "gzip"),
    ("gzip;q=1, br;q=0.5", BOTH, "gzip"), ("br;q=0.8, gzip;q=0.8", BOTH, "br"), ("*", BOTH, "br"),
    ("*;q=0", BOTH, None), ("br;q=0, *", BOTH, "gzip"), ("gzip;q=0.5, identity", BOTH, None),
    ("gzip;q=0.5", BOTH, "gzip"), ("br;q=0.5, identity;q=0.5", BOTH, "br"), ("x-gzip", BOTH, "gzip"),
    ("br;q=0, gzip;q=0", BOTH, None), ("identity;q=0, gzip;q=0.1", BOTH, "gzip"), ("GZIP;Q=0.5, BR;q=0.4", BOTH, "gzip"),
    ("br;q=abc, gzip", BOTH, "gzip"), ("br;q=2, gzip", BOTH, "gzip"), ("deflate", BOTH, None), ("gzip", (), None),
])
def test_accept_encoding_negotiation(header, available, expected):
    assert choose_encoding(header, available) == expected


def test_brotli_quality(tmp_path):
    pytest.importorskip("brotli")
    (tmp_path / "atomicsite.toml").write_text('compress = ["br"]\ncompress_brotli_quality = 5\n')
    s = load_settings(cwd=tmp_path, env={})
    assert s.compress.brotli_quality == 5
    data = b"<p>quality</p>" * 500
    assert decompress_bytes(compress_bytes(data, "br", 5), "br") == data
    (tmp_path / "atomicsite.toml").write_text('compress_brotli_quality = 12\n')
    with pytest.raises(ConfigError, match="compress_brotli_quality: must be 0 to 11, got 12"):
        load_settings(cwd=tmp_path, env={})


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "atomicsite", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("config, flags, message", [
    ("", ["--compress", "bz2"], "--compress: unknown encoding 'bz2'"),
    ('compress = ["br", "zstd"]\n', [], "compress: unknown encoding 'zstd'"),
    ('compress = ["gzip"]\ncompress_min_size = 0\n', [], "compress_min_size: must be at least 1, got 0"),
    ('compress = ["gzip"]\ncompress_min_size = "big"\n', [], "compress_min_size: 'big' is not a whole number"),
    ('compress_types = []\n', [], "compress_types: must be a non-empty list"),
    ('compress = 3\n', [], "compress: must be a list of encodings"),
])
def test_config_errors_are_one_line_with_exit_2(tmp_path, config, flags, message):
    build = tmp_path / "b"
    build.mkdir()
    (build / "index.html").write_text("<p>hi</p>" * 200)
    (tmp_path / "atomicsite.toml").write_text(f'target = "{tmp_path / "target"}"\n' + config)
    r = run_cli("publish", str(build), *flags, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "target").exists()
