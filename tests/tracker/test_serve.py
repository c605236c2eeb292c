"""The tracker's HTTP values: the bundle response, its validators, the script tag."""

from __future__ import annotations

import gzip
from html.parser import HTMLParser

import pytest

from penchant.tracker_js import serve


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in headers if key.lower() == name.lower()]
    assert len(values) <= 1, f"{name} sent {len(values)} times"
    return values[0] if values else None


def test_bundle_is_the_committed_file() -> None:
    from importlib.resources import files

    on_disk = files("penchant.tracker_js").joinpath("tracker.min.js").read_bytes()
    assert on_disk == serve.BUNDLE
    assert serve.BUNDLE, "the bundle is empty"


def test_full_response_carries_script_and_validators() -> None:
    status, headers, body = serve.tracker_response(None)
    assert status == 200
    assert body == serve.BUNDLE
    assert _header(headers, "Content-Type") == "application/javascript; charset=utf-8"
    assert _header(headers, "Content-Length") == str(len(body))
    assert _header(headers, "Content-Encoding") is None
    etag = _header(headers, "ETag")
    assert etag == serve.ETAG
    # A strong validator: quoted, no weak prefix.
    assert etag is not None and etag.startswith('"') and etag.endswith('"')


@pytest.mark.parametrize(
    "if_none_match",
    [
        lambda etag: etag,
        lambda etag: f"W/{etag}",
        lambda etag: f'"something-else", {etag}',
        lambda etag: "*",
    ],
    ids=["exact", "weak", "list", "star"],
)
def test_matching_etag_gives_304_without_body(if_none_match: object) -> None:
    header = if_none_match(serve.ETAG)  # type: ignore[operator]
    status, headers, body = serve.tracker_response(header)
    assert status == 304
    assert body == b""
    assert _header(headers, "ETag") == serve.ETAG
    assert _header(headers, "Cache-Control") is not None
    assert _header(headers, "Content-Length") is None


@pytest.mark.parametrize("if_none_match", ['"stale"', "", 'W/"stale", "older"'])
def test_other_etag_gives_the_bundle(if_none_match: str) -> None:
    status, _, body = serve.tracker_response(if_none_match)
    assert status == 200
    assert body == serve.BUNDLE


def test_versioned_url_is_immutable_other_urls_revalidate() -> None:
    _, versioned, _ = serve.tracker_response(None, version=serve.VERSION)
    _, bare, _ = serve.tracker_response(None)
    _, old, _ = serve.tracker_response(None, version="0" * len(serve.VERSION))
    assert "immutable" in (_header(versioned, "Cache-Control") or "")
    for headers in (bare, old):
        cache_control = _header(headers, "Cache-Control") or ""
        assert "immutable" not in cache_control
        assert "max-age=86400" in cache_control


@pytest.mark.parametrize(
    ("accept_encoding", "compressed"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("*", True),
        ("*;q=0, gzip", True),
        ("gzip;q=0", False),
        ("gzip;q=0, *", False),
        ("br", False),
        ("identity", False),
        (None, False),
        ("gzip;q=nonsense", False),
    ],
)
def test_gzip_only_when_accepted(accept_encoding: str | None, compressed: bool) -> None:
    status, headers, body = serve.tracker_response(None, accept_encoding=accept_encoding)
    assert status == 200
    assert _header(headers, "Vary") == "Accept-Encoding"
    assert _header(headers, "Content-Length") == str(len(body))
    if compressed:
        assert _header(headers, "Content-Encoding") == "gzip"
        assert gzip.decompress(body) == serve.BUNDLE
        assert _header(headers, "ETag") == serve.ETAG_GZIP
    else:
        assert _header(headers, "Content-Encoding") is None
        assert body == serve.BUNDLE
        assert _header(headers, "ETag") == serve.ETAG


def test_each_representation_revalidates_against_its_own_etag() -> None:
    status, _, _ = serve.tracker_response(serve.ETAG_GZIP, accept_encoding="gzip")
    assert status == 304
    status, _, body = serve.tracker_response(serve.ETAG, accept_encoding="gzip")
    assert status == 200
    assert gzip.decompress(body) == serve.BUNDLE


def test_compressed_bundle_is_reproducible() -> None:
    assert gzip.compress(serve.BUNDLE, 9, mtime=0) == serve.BUNDLE_GZIP


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> tuple[list[tuple[str, dict[str, str | None]]], str]:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser.tags, "".join(parser.text)


def test_script_tag_defaults() -> None:
    tags, text = _parse(serve.script_tag(prefix="/personalization", token="abc.def"))
    assert text == ""
    assert len(tags) == 1
    name, attrs = tags[0]
    assert name == "script"
    assert "defer" in attrs
    assert attrs["src"] == f"/personalization/tracker.js?v={serve.VERSION}"
    assert attrs["data-endpoint"] == "/personalization/track-interaction"
    assert attrs["data-token"] == "abc.def"
    for absent in ("data-off", "data-webdriver", "nonce", "async"):
        assert absent not in attrs


def test_script_tag_options() -> None:
    html = serve.script_tag(
        prefix="/p13n", token="t", off=True, allow_webdriver=True, nonce="r4nd0m"
    )
    tags, _ = _parse(html)
    attrs = tags[0][1]
    assert attrs["src"] is not None and attrs["src"].startswith("/p13n/tracker.js?v=")
    assert attrs["data-endpoint"] == "/p13n/track-interaction"
    assert attrs["data-off"] == "1"
    assert attrs["data-webdriver"] == "1"
    assert attrs["nonce"] == "r4nd0m"


@pytest.mark.parametrize(
    "hostile",
    ['"><script>alert(1)</script>', "a'b\"c<d>e&f", '" onload="alert(1)'],
)
def test_script_tag_escapes_every_value(hostile: str) -> None:
    html = serve.script_tag(prefix=f"/x{hostile}", token=hostile, nonce=hostile)
    tags, text = _parse(html)
    # One script element, nothing injected around or inside it.
    assert [name for name, _ in tags] == ["script"]
    assert text == ""
    attrs = tags[0][1]
    assert attrs["data-token"] == hostile
    assert attrs["nonce"] == hostile
    assert attrs["data-endpoint"] == f"/x{hostile}/track-interaction"
    assert "onload" not in attrs
