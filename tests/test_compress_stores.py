"""Objects with Content-Encoding on every store, over the real servers: the headers are stored, and
reading back gives the stored (encoded) bytes, never bytes the SDK or the server decoded."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from atomicsite.compress import compress_bytes

TEXT = ("<p>compress me</p>\n" * 400).encode()


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_put_with_content_encoding_reads_back_raw(rig, encoding):
    pytest.importorskip("brotli")
    packed = compress_bytes(TEXT, encoding)
    info = rig.store.put("v/x/page.html" + (".gz" if encoding == "gzip" else ".br"), packed,
                         content_type="text/html; charset=utf-8", cache_control="no-cache",
                         metadata={"sha256": hashlib.sha256(packed).hexdigest()},
                         extra_headers={"content-encoding": encoding})
    key = info.key
    assert b"".join(rig.store.open(key)) == packed  # not decoded by the SDK or transcoded by the server
    assert b"".join(rig.store.open(key, 10, 30)) == packed[10:30]  # ranges over the stored bytes
    assert rig.store.get(key).data == packed
    head = rig.store.head(key)
    assert head.size == len(packed)
    if rig.keeps_headers:
        assert head.extra_headers == {"content-encoding": encoding}
        assert head.content_type == "text/html; charset=utf-8"


def test_copy_sets_and_clears_extra_headers(rig):
    packed = gzip.compress(TEXT, mtime=0)
    rig.store.put("a.gz", packed, content_type="text/plain", extra_headers={"content-encoding": "gzip"})
    rig.store.copy("a.gz", "b.gz", content_type="text/plain", extra_headers={"content-encoding": "gzip",
                                                                              "content-language": "de"})
    rig.store.copy("a.gz", "c.gz", content_type="application/gzip")  # a real .gz file: no encoding
    assert b"".join(rig.store.open("b.gz")) == packed
    assert b"".join(rig.store.open("c.gz")) == packed
    if rig.keeps_headers:
        assert rig.store.head("b.gz").extra_headers == {"content-encoding": "gzip", "content-language": "de"}
        # GCS fills a rewrite's unset fields from the source (fake-gcs-server does; the store's copy
        # docstring says so), which is why publish only copies between objects of the same encoding.
        assert rig.store.head("c.gz").extra_headers == ({"content-encoding": "gzip"} if rig.name == "gcs" else {})


def test_unknown_extra_header_is_refused(rig):
    if rig.name == "local":
        pytest.skip("the local store keeps no per-object headers")
    with pytest.raises(ValueError):
        rig.store.put("x", b"x", extra_headers={"x-frame-options": "DENY"})


def test_gcs_transcodes_gzip_objects_for_clients_without_gzip(gcs_rig):
    """What fake-gcs-server really does with a Content-Encoding: gzip object (decompressive
    transcoding, as GCS documents it): decoded for a client that does not accept gzip, stored bytes
    with the header for one that does. The store itself always reads the stored bytes."""
    import urllib.request

    packed = gzip.compress(TEXT, mtime=0)
    gcs_rig.store.put("t/page.html.gz", packed, content_type="text/html", extra_headers={"content-encoding": "gzip"})
    store = gcs_rig.store
    name = urllib.request.quote(store._name("t/page.html.gz"), safe="")
    url = f"{store._client._connection.API_BASE_URL}/download/storage/v1/b/{store.bucket_name}/o/{name}?alt=media"
    plain = urllib.request.urlopen(urllib.request.Request(url, headers={"Accept-Encoding": "identity"}))
    assert plain.read() == TEXT and plain.headers.get("Content-Encoding") is None
    raw = urllib.request.urlopen(urllib.request.Request(url, headers={"Accept-Encoding": "gzip"}))
    assert raw.read() == packed and raw.headers.get("Content-Encoding") == "gzip"
    assert b"".join(store.open("t/page.html.gz")) == packed
