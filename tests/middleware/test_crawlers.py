"""The crawler check answers as crawlerdetect does, over its whole list."""

from __future__ import annotations

import random
import re
import string

import pytest
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as CRAWLERS
from crawlerdetect.providers.exclusions import data as EXCLUSIONS

from penchant.middleware import identity
from penchant.middleware.identity import CrawlerList, is_bot

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebkit/534.30 "
    "(KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
    "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18",
]


def _examples() -> list[str]:
    """A User-Agent for every crawler pattern that reads as text, plus near misses."""
    found = []
    for pattern in CRAWLERS:
        text = pattern.replace("\\", "").strip("^$")
        if text and re.search(pattern, text, re.IGNORECASE):
            found.append(f"Mozilla/5.0 (compatible; {text}; +https://example.com)")
            found.append(text.swapcase())
            found.append(text[:-1])  # one character short: often no longer a crawler
    return found


def _noise(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + " ()/;.-_+:"
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 60))) for _ in range(n)]


@pytest.fixture(scope="module")
def ours() -> CrawlerList:
    return CrawlerList(CRAWLERS, EXCLUSIONS)


def test_every_pattern_of_the_list_is_answered_as_crawlerdetect_does(ours: CrawlerList) -> None:
    reference = CrawlerDetect()
    examples = _examples()
    assert len(examples) > 2000  # most of the list's patterns read as text
    expected = {agent: reference.is_crawler(agent) for agent in examples}
    assert {
        agent: not crawler for agent, crawler in expected.items() if ours(agent) != crawler
    } == {}
    assert sum(expected.values()) > 1000


def test_browsers_and_noise_are_answered_as_crawlerdetect_does(ours: CrawlerList) -> None:
    reference = CrawlerDetect()
    agents = [*BROWSERS, *_noise(7, 300), "", "   "]
    assert [agent for agent in agents if ours(agent) != reference.is_crawler(agent)] == []
    assert not any(ours(agent) for agent in BROWSERS)


def test_lookaround_patterns_are_still_searched(ours: CrawlerList) -> None:
    # The list's one lookaround pattern (Yandex, but not YandexSearch) is searched with re.
    assert any("(?!" in p for p in CRAWLERS)
    assert ours("Mozilla/5.0 (compatible; Yandex/1.0)")
    assert ours("Yandex/1.0") == CrawlerDetect().is_crawler("Yandex/1.0")
    assert ours("YandexSearch/1.0") == CrawlerDetect().is_crawler("YandexSearch/1.0")


@pytest.mark.parametrize(
    ("error", "level", "said"),
    [
        (ImportError("no module named re2"), "INFO", "google-re2 not installed"),
        (ValueError("RE2 cannot read it"), "WARNING", "crawler list not readable by RE2"),
    ],
)
def test_without_re2_crawlerdetect_answers(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    level: str,
    said: str,
) -> None:
    def fails(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(identity, "CrawlerList", fails)
    identity.crawler_detector.cache_clear()
    identity.crawler_cache.cache_clear()
    try:
        with caplog.at_level("INFO", logger="personalization"):
            detector = identity.crawler_detector()
        assert not isinstance(detector, CrawlerList)
        # said once, at INFO for the extra not installed, at WARNING for a list RE2 refuses
        assert [(r.levelname, said in r.getMessage()) for r in caplog.records] == [(level, True)]
        assert is_bot("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
        assert not is_bot(BROWSERS[0])
    finally:
        monkeypatch.undo()
        identity.crawler_detector.cache_clear()
        identity.crawler_cache.cache_clear()
    assert isinstance(identity.crawler_detector(), CrawlerList)
