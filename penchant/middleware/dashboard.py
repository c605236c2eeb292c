"""The operator dashboard: data gathering, server-side SVG charts, and access control.

No web framework here: :func:`collect` reads the Store and the writer's
accounting into a :class:`DashboardData`, :func:`render` turns it into one HTML
page (every value escaped by Jinja2's autoescape), :func:`authorized` checks the
credentials, and :func:`respond` puts the three together as ``(status, headers,
body)`` for the ASGI and WSGI adapters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import jinja2
import markupsafe

from penchant.engine.catalog import Catalog
from penchant.engine.ranking import Popularity
from penchant.engine.report import Report

if TYPE_CHECKING:
    from penchant.config import Settings

__all__ = [
    "DASHBOARD_HEADERS",
    "UNAUTHORIZED_BODY",
    "UNAUTHORIZED_HEADERS",
    "Bar",
    "BarChart",
    "ComparisonChart",
    "DashboardData",
    "DashboardSource",
    "RecentInteraction",
    "StackedChart",
    "authorized",
    "collect",
    "render",
    "respond",
]

#: Colour of each interaction type in the charts; anything else is grey.
TYPE_COLOURS: Mapping[str, str] = {
    "view": "#5b7cfa",
    "search": "#f0a020",
    "click": "#159f74",
    "form_submit": "#e0464b",
}
_OTHER_COLOUR = "#9aa3ad"
_TYPE_ORDER = ("view", "search", "click", "form_submit")


class DashboardSource(Protocol):
    """The Store methods the dashboard reads (all SQL stays in the Store)."""

    def daily_counts(self, since: datetime) -> list[tuple[str, str, int]]: ...
    def engaged_visitors(self, since: datetime, *, minimum: int = 5) -> list[tuple[str, int]]: ...
    def popularity(self, since: datetime, *, limit_per_type: int = 500) -> Popularity: ...


# ---------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class RecentInteraction:
    """One recent interaction as the dashboard lists it (no raw request data exists)."""

    timestamp: datetime
    user_id: str
    interaction_type: str
    target: str
    metadata: str


@dataclass(frozen=True, slots=True)
class DashboardData:
    """Everything one dashboard page shows, gathered at ``generated_at`` (naive UTC)."""

    generated_at: datetime
    #: (day as ISO date, interaction type, count) over the last 30 days
    daily: Sequence[tuple[str, str, int]] = ()
    #: (category name, summed affinity, visitors or None)
    top_categories: Sequence[tuple[str, float, int | None]] | None = None
    #: (fingerprint, interactions over the window)
    engaged: Sequence[tuple[str, int]] = ()
    #: (target type, name, distinct visitors)
    popular: Sequence[tuple[str, str, int]] = ()
    #: the writer's accounting, as ``Penchant.health()`` returns it
    writer: Mapping[str, object] = field(default_factory=dict)
    dead_lettered: int | None = None
    recent: Sequence[RecentInteraction] | None = None
    #: personalized against holdout, once the experiment reports
    experiment: Report | None = None
    errors: Sequence[str] = ()


def collect(
    store: DashboardSource,
    stats: Mapping[str, object],
    now: datetime,
    *,
    catalog: Catalog | None = None,
    days: int = 30,
    engaged_minimum: int = 5,
    limit: int = 10,
    experiment: Report | Callable[[], Report | None] | None = None,
) -> DashboardData:
    """Read what the page shows; a failing query leaves its panel empty and says why.

    ``experiment`` is the A/B report, or a callable that builds it.
    """
    catalog = catalog if catalog is not None else Catalog()
    since = datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time())
    errors: list[str] = []

    def attempt(label: str, call: Callable[[], Any], default: Any) -> Any:
        try:
            return call()
        except Exception as exc:  # a broken panel must not take the page down
            errors.append(f"{label}: {exc.__class__.__name__}")
            return default

    daily = attempt("interactions per day", lambda: list(store.daily_counts(since)), [])
    engaged_rows = attempt(
        "engaged visitors",
        lambda: list(store.engaged_visitors(since, minimum=engaged_minimum)),
        [],
    )
    engaged = sorted(((str(u), int(n)) for u, n in engaged_rows), key=lambda r: (-r[1], r[0]))
    popularity = attempt("popular items", lambda: store.popularity(since), Popularity())
    top_categories = None
    top = getattr(store, "top_categories", None)
    if callable(top):
        rows = attempt("top categories", lambda: list(top(limit)), [])
        top_categories = [_category_row(row, catalog) for row in rows][:limit]
    dead_lettered = None
    dead = getattr(store, "dead_letter_count", None)
    if callable(dead):
        dead_lettered = attempt("dead letters", dead, None)
    recent = None
    latest = getattr(store, "recent_interactions", None)
    if callable(latest):
        rows = attempt("recent interactions", lambda: list(latest(limit)), [])
        recent = [_recent_row(row, catalog) for row in rows]
    report = experiment
    if callable(experiment):
        report = attempt("A/B results", experiment, None)
    return DashboardData(
        generated_at=now,
        daily=[(str(d), str(t), int(n)) for d, t, n in daily],
        top_categories=top_categories,
        engaged=engaged[:limit],
        popular=_popular_rows(popularity, catalog, limit),
        writer=dict(stats),
        dead_lettered=None if dead_lettered is None else int(dead_lettered),
        recent=recent,
        experiment=report if isinstance(report, Report) else None,
        errors=errors,
    )


def _category_row(row: Any, catalog: Catalog) -> tuple[str, float, int | None]:
    category_id, score = int(row[0]), float(row[1])
    visitors = int(row[2]) if len(row) > 2 and row[2] is not None else None
    category = catalog.category(category_id)
    return (category.name if category else f"category {category_id}", score, visitors)


def _target_name(target_type: str, target_id: int | None, catalog: Catalog) -> str:
    if target_id is None:
        return target_type
    found = (
        catalog.category(target_id)
        if target_type == "category"
        else catalog.item(target_type, target_id)
    )
    return found.name if found is not None else f"{target_type} {target_id}"


def _recent_row(row: Any, catalog: Catalog) -> RecentInteraction:
    extra = row.extra_data
    metadata = "" if not extra else json.dumps(dict(extra), sort_keys=True, default=str)
    return RecentInteraction(
        timestamp=row.timestamp,
        user_id=str(row.user_id),
        interaction_type=str(row.interaction_type),
        target=_target_name(str(row.target_type), row.target_id, catalog),
        metadata=metadata,
    )


def _popular_rows(
    popularity: Popularity, catalog: Catalog, limit: int
) -> list[tuple[str, str, int]]:
    rows = [
        (target_type, _target_name(target_type, target_id, catalog), count)
        for target_type, counts in popularity.counts.items()
        if target_type != "page"
        for target_id, count in counts.items()
    ]
    rows.sort(key=lambda r: (-r[2], r[0], r[1]))
    return rows[:limit]


# -------------------------------------------------------------------- charts


@dataclass(frozen=True, slots=True)
class Bar:
    """One rectangle of a chart, in SVG user units."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class StackedChart:
    """Interactions per day, stacked by type."""

    width: int
    height: int
    bars: Sequence[Bar]
    gridlines: Sequence[tuple[float, str]]  # (y, label)
    labels: Sequence[tuple[float, str]]  # (x, day label)
    legend: Sequence[tuple[str, str, int]]  # (type, colour, total)
    total: int
    plot_right: float


@dataclass(frozen=True, slots=True)
class BarChart:
    """A horizontal bar chart: one labelled bar per row."""

    width: int
    height: int
    bars: Sequence[Bar]
    rows: Sequence[tuple[float, str, str]]  # (y of the text, label, value)


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten not below ``value`` (axis maximum)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def stacked_chart(
    daily: Sequence[tuple[str, str, int]],
    end: date,
    days: int,
    *,
    width: int = 1000,
    height: int = 230,
) -> StackedChart:
    """Stacked bars, one per day from ``end - days + 1`` to ``end``; missing days are zero."""
    left, right, top, bottom = 44, 30, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    span = [end - timedelta(days=days - 1 - i) for i in range(days)]
    index = {d.isoformat(): i for i, d in enumerate(span)}
    per_day: list[dict[str, int]] = [{} for _ in span]
    totals: dict[str, int] = {}
    for day, kind, count in daily:
        i = index.get(day[:10])
        if i is None or count <= 0:
            continue
        per_day[i][kind] = per_day[i].get(kind, 0) + count
        totals[kind] = totals.get(kind, 0) + count
    kinds = [k for k in _TYPE_ORDER if k in totals] + sorted(set(totals) - set(_TYPE_ORDER))
    top_value = nice_ceiling(max((sum(d.values()) for d in per_day), default=0))
    slot = plot_w / days
    bar_w = max(1.0, slot * 0.7)
    bars: list[Bar] = []
    for i, counts in enumerate(per_day):
        y = float(top + plot_h)
        x = left + i * slot + (slot - bar_w) / 2
        for kind in kinds:
            count = counts.get(kind, 0)
            if not count:
                continue
            h = plot_h * count / top_value
            y -= h
            title = f"{span[i].isoformat()}: {count} {kind}"
            bars.append(Bar(_r(x), _r(y), _r(bar_w), _r(h), _colour(kind), title))
    gridlines = [
        (_r(top + plot_h - plot_h * f), _count_label(top_value * f)) for f in (0.0, 0.5, 1.0)
    ]
    every = 1 if days <= 10 else 7
    labels = [
        (_r(left + i * slot + slot / 2), d.strftime("%b %d"))
        for i, d in enumerate(span)
        if (days - 1 - i) % every == 0
    ]
    legend = [(k, _colour(k), totals[k]) for k in kinds]
    return StackedChart(
        width, height, bars, gridlines, labels, legend, sum(totals.values()), left + plot_w
    )


def bar_chart(
    rows: Sequence[tuple[str, float, str]],
    *,
    colour: str = "#5b7cfa",
    width: int = 520,
    row_height: int = 24,
) -> BarChart:
    """Horizontal bars for (label, value, value as text) rows, longest value full width."""
    label_w, value_w = 250, 50
    plot_w = width - label_w - value_w
    top_value = max((v for _, v, _ in rows), default=0.0) or 1.0
    bars: list[Bar] = []
    texts: list[tuple[float, str, str]] = []
    for i, (label, value, shown) in enumerate(rows):
        y = i * row_height
        w = max(0.0, plot_w * value / top_value)
        bars.append(Bar(label_w, _r(y + 4), _r(w), row_height - 8, colour, f"{label}: {shown}"))
        texts.append((_r(y + row_height / 2 + 4), label, shown))
    return BarChart(width, max(row_height, row_height * len(rows)), bars, texts)


@dataclass(frozen=True, slots=True)
class ComparisonChart:
    """Personalized against holdout: one pair of bars with intervals per metric."""

    width: int
    height: int
    bars: Sequence[Bar]
    whiskers: Sequence[tuple[float, float, float]]  # (x low, x high, y)
    texts: Sequence[tuple[float, float, str, str]]  # (x, y, text, css class)
    rows: Sequence[tuple[str, str, str, str, str]]  # metric, uplift, interval, p, note


def comparison_chart(report: Report, *, width: int = 1000) -> ComparisonChart:
    """Each metric on its own scale (its largest interval end is full width)."""
    label_w, value_w, bar_h, gap = 190, 190, 14, 16
    plot_w = width - label_w - value_w
    bars: list[Bar] = []
    whiskers: list[tuple[float, float, float]] = []
    texts: list[tuple[float, float, str, str]] = []
    rows: list[tuple[str, str, str, str, str]] = []
    y = 0.0
    for c in report.comparisons:
        rate = c.metric != "interactions_per_session"
        scale = max(c.personalized.high, c.holdout.high, c.personalized.value, 1e-9)
        name = c.metric.replace("_", " ")
        texts.append((0.0, _r(y + bar_h + 3), name, "label"))
        for variant, estimate, colour in (
            ("personalized", c.personalized, TYPE_COLOURS["view"]),
            ("holdout", c.holdout, _OTHER_COLOUR),
        ):
            shown = _estimate(estimate.value, rate)
            interval = f"[{_estimate(estimate.low, rate)}, {_estimate(estimate.high, rate)}]"
            bars.append(
                Bar(
                    label_w,
                    _r(y),
                    _r(plot_w * estimate.value / scale),
                    bar_h,
                    colour,
                    f"{variant}: {shown} {interval}, n={estimate.n:,}",
                )
            )
            mid = y + bar_h / 2
            whiskers.append(
                (
                    _r(label_w + plot_w * estimate.low / scale),
                    _r(label_w + plot_w * estimate.high / scale),
                    _r(mid),
                )
            )
            texts.append((label_w + plot_w + 8, _r(mid + 4), f"{shown} {interval}", ""))
            y += bar_h + 4
        y += gap
        uplift = "-" if c.uplift is None else f"{c.uplift:+.1%}"
        interval = (
            "-"
            if c.uplift_low is None or c.uplift_high is None
            else f"[{c.uplift_low:+.1%}, {c.uplift_high:+.1%}]"
        )
        p_value = "-" if c.p_value is None else f"{c.p_value:.3f}"
        note = c.note or ("" if c.enough_data else "not enough visitors yet")
        rows.append((name, uplift, interval, p_value, note))
    return ComparisonChart(width, max(1, int(y)), bars, whiskers, texts, rows)


def _estimate(value: float, rate: bool) -> str:
    return f"{value:.1%}" if rate else f"{value:.2f}"


def _colour(kind: str) -> str:
    return TYPE_COLOURS.get(kind, _OTHER_COLOUR)


def _r(value: float) -> float:
    return round(value, 2)


def _count_label(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


# ------------------------------------------------------------------ rendering

_STYLE = """
:root{color-scheme:light;--ink:#1d2430;--muted:#5f6b7a;--line:#e3e7ee;--card:#fff;--bg:#f5f7fb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:var(--bg)}
header{padding:18px 24px;background:#1d2430;color:#fff}
header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c5cedb}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px;
padding:16px 24px 32px;max-width:1400px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;
min-width:0}
section.wide{grid-column:1/-1}
h2{margin:0 0 10px;font-size:15px}
table+h2{margin-top:18px}
svg{width:100%;height:auto;display:block}
svg text{font:11px system-ui,sans-serif;fill:#5f6b7a}
svg .label{fill:#1d2430;font-size:12px}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:5px 6px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
.legend{display:flex;flex-wrap:wrap;gap:12px;margin:6px 0 0;padding:0;list-style:none;
color:var(--muted)}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.swatch.view{background:#5b7cfa}.swatch.search{background:#f0a020}
.swatch.click{background:#159f74}.swatch.form_submit{background:#e0464b}
.swatch.other{background:#9aa3ad}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:10px}
.stat{border:1px solid var(--line);border-radius:8px;padding:8px 10px}
.stat b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.stat span{color:var(--muted)}
.bad b{color:#c0392b}
.empty,.note{color:var(--muted)}
.errors{color:#c0392b}
"""

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex,nofollow">
<title>penchant dashboard</title>
<style>{{ style }}</style></head>
<body>
<header><h1>penchant dashboard</h1>
<p>Generated {{ data.generated_at.strftime("%Y-%m-%d %H:%M") }} UTC
&middot; visitors are shown by fingerprint only</p></header>
<main>
{% if data.errors %}<section class="wide errors"><h2>Some panels could not be loaded</h2>
<ul>{% for e in data.errors %}<li>{{ e }}</li>{% endfor %}</ul></section>{% endif %}

{% for title, chart in (("Interactions per day, last 7 days", week),
                        ("Interactions per day, last 30 days", month)) %}
<section class="wide"><h2>{{ title }} &middot; {{ "{:,}".format(chart.total) }} in all</h2>
{% if chart.total %}
<svg viewBox="0 0 {{ chart.width }} {{ chart.height }}" role="img" aria-label="{{ title }}">
{% for y, label in chart.gridlines %}
<line x1="44" x2="{{ chart.plot_right }}" y1="{{ y }}" y2="{{ y }}" stroke="#e3e7ee"/>
<text x="38" y="{{ y + 4 }}" text-anchor="end">{{ label }}</text>
{% endfor %}
{% for b in chart.bars %}
<rect x="{{ b.x }}" y="{{ b.y }}" width="{{ b.width }}" height="{{ b.height }}"
 fill="{{ b.colour }}"><title>{{ b.title }}</title></rect>
{% endfor %}
{% for x, label in chart.labels %}
<text x="{{ x }}" y="{{ chart.height - 8 }}" text-anchor="middle">{{ label }}</text>
{% endfor %}
</svg>
<ul class="legend">
{% for kind, colour, total in chart.legend %}
<li><span class="swatch {{ kind if kind in known_types else 'other' }}"></span>
{{- kind }}: {{ "{:,}".format(total) }}</li>
{% endfor %}
</ul>
{% else %}<p class="empty">No interactions in this period yet.</p>{% endif %}
</section>
{% endfor %}

<section><h2>Top categories by affinity</h2>
{% if data.top_categories is none %}<p class="empty">Not available from this store.</p>
{% elif categories.bars %}{{ hbar(categories, "Top categories by affinity") }}
{% else %}<p class="empty">No affinities yet.</p>{% endif %}
</section>

<section><h2>Popular items (distinct visitors, 30 days)</h2>
{% if popular.bars %}{{ hbar(popular, "Popular items") }}
{% else %}<p class="empty">Nothing viewed yet.</p>{% endif %}
</section>

<section><h2>Most engaged visitors (30 days)</h2>
{% if data.engaged %}
<table><thead><tr><th>Fingerprint</th><th class="num">Interactions</th></tr></thead>
<tbody>
{% for fingerprint, count in data.engaged %}
<tr><td><code>{{ fingerprint }}</code></td>
<td class="num">{{ "{:,}".format(count) }}</td></tr>
{% endfor %}
</tbody></table>
{% else %}
<p class="empty">No visitor with more than the minimum number of interactions yet.</p>
{% endif %}
</section>

<section><h2>Writer health</h2>
<p class="note">This process's writer, since it started.</p>
<div class="stats">
{% for label, value, bad in writer_stats %}
<div class="stat{{ ' bad' if bad }}"><b>{{ value }}</b><span>{{ label }}</span></div>
{% endfor %}
</div>
{% if dropped %}
<table><thead><tr><th>Dropped because</th><th class="num">Events</th></tr></thead>
<tbody>
{% for reason, count in dropped %}
<tr><td>{{ reason }}</td><td class="num">{{ "{:,}".format(count) }}</td></tr>
{% endfor %}
</tbody></table>
{% endif %}
{% if data.writer.get("last_error") %}
<p class="errors">Last error: {{ data.writer.get("last_error") }}</p>
{% endif %}
{% if not data.writer %}
<p class="note">The writer has not started in this process yet.</p>
{% endif %}
</section>

<section class="wide"><h2>A/B results: personalized against holdout</h2>
{% if experiment %}
{% set report = data.experiment %}
<p class="note">Last {{ report.days }} days, holdout {{ "{:.0%}".format(report.holdout) }}:
{{ "{:,}".format(report.visitors.get("personalized", 0)) }} personalized and
{{ "{:,}".format(report.visitors.get("holdout", 0)) }} holdout visitors.</p>
{% if not report.enough_data %}
<p class="errors">Not enough visitors yet: read these figures as anecdotes, not results.</p>
{% endif %}
<svg viewBox="0 0 {{ experiment.width }} {{ experiment.height }}" role="img"
 aria-label="Personalized against holdout">
{% for b in experiment.bars %}
<rect x="{{ b.x }}" y="{{ b.y }}" width="{{ b.width }}" height="{{ b.height }}" rx="2"
 fill="{{ b.colour }}"><title>{{ b.title }}</title></rect>
{% endfor %}
{% for x1, x2, y in experiment.whiskers %}
<line x1="{{ x1 }}" x2="{{ x2 }}" y1="{{ y }}" y2="{{ y }}" stroke="#1d2430"/>
<line x1="{{ x1 }}" x2="{{ x1 }}" y1="{{ y - 4 }}" y2="{{ y + 4 }}" stroke="#1d2430"/>
<line x1="{{ x2 }}" x2="{{ x2 }}" y1="{{ y - 4 }}" y2="{{ y + 4 }}" stroke="#1d2430"/>
{% endfor %}
{% for x, y, text, cls in experiment.texts %}
<text class="{{ cls }}" x="{{ x }}" y="{{ y }}">{{ text }}</text>
{% endfor %}
</svg>
<ul class="legend"><li><span class="swatch view"></span>personalized</li>
<li><span class="swatch other"></span>holdout</li><li>whiskers: 95% confidence interval</li></ul>
<table><thead><tr><th>Metric</th><th class="num">Uplift</th><th class="num">95% CI</th>
<th class="num">p-value</th><th>Note</th></tr></thead>
<tbody>
{% for row in experiment.rows %}
<tr><td>{{ row[0] }}</td><td class="num">{{ row[1] }}</td><td class="num">{{ row[2] }}</td>
<td class="num">{{ row[3] }}</td><td>{{ row[4] }}</td></tr>
{% endfor %}
</tbody></table>
{% if report.funnels %}
<h2>Most common paths to a form submission</h2>
<table><thead><tr><th>Path</th><th class="num">Sessions</th></tr></thead>
<tbody>
{% for path, n in report.funnels %}
<tr><td>{{ path|join(" > ") }}</td><td class="num">{{ "{:,}".format(n) }}</td></tr>
{% endfor %}
</tbody></table>
{% endif %}
{% else %}
<p class="empty">A/B results appear here once the holdout comparison reports.</p>
{% endif %}
</section>

{% if data.recent is not none %}
<section class="wide"><h2>Latest interactions</h2>
{% if data.recent %}
<table><thead><tr><th>When (UTC)</th><th>Fingerprint</th><th>Type</th><th>Target</th>
<th>Metadata</th></tr></thead>
<tbody>
{% for r in data.recent %}
<tr><td>{{ r.timestamp.strftime("%Y-%m-%d %H:%M:%S") }}</td>
<td><code>{{ r.user_id }}</code></td><td>{{ r.interaction_type }}</td><td>{{ r.target }}</td>
<td><code>{{ r.metadata }}</code></td></tr>
{% endfor %}
</tbody></table>
{% else %}<p class="empty">No interactions yet.</p>{% endif %}
</section>
{% endif %}
</main>
</body></html>
"""

_HBAR = """{% macro hbar(chart, title) -%}
<svg viewBox="0 0 {{ chart.width }} {{ chart.height }}" role="img" aria-label="{{ title }}">
{% for b in chart.bars %}
<rect x="{{ b.x }}" y="{{ b.y }}" width="{{ b.width }}" height="{{ b.height }}" rx="3"
 fill="{{ b.colour }}"><title>{{ b.title }}</title></rect>
{% endfor %}
{% for y, label, value in chart.rows %}
<text class="label" x="0" y="{{ y }}">{{ label|truncate(36, true, "...") }}</text>
<text x="{{ chart.width }}" y="{{ y }}" text-anchor="end">{{ value }}</text>
{% endfor %}
</svg>
{%- endmacro %}"""

_ENV = jinja2.Environment(
    loader=jinja2.DictLoader(
        {"page.html": "{% from 'macros.html' import hbar %}" + _TEMPLATE, "macros.html": _HBAR}
    ),
    autoescape=True,  # every value, including stored metadata, is escaped
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

#: Response headers of the dashboard page: no caching, nothing but our own inline style.
DASHBOARD_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-type", "text/html; charset=utf-8"),
    ("cache-control", "no-store"),
    (
        "content-security-policy",
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("x-robots-tag", "noindex, nofollow"),
)

#: Response headers of a refused request: the browser asks for basic credentials.
UNAUTHORIZED_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-type", "text/plain; charset=utf-8"),
    ("cache-control", "no-store"),
    ("www-authenticate", 'Basic realm="penchant dashboard", charset="UTF-8"'),
    ("x-content-type-options", "nosniff"),
)
#: Body of a refused request.
UNAUTHORIZED_BODY = b"Dashboard credentials required.\n"


def render(data: DashboardData) -> str:
    """The whole dashboard page as HTML."""
    end = data.generated_at.date()
    categories = bar_chart(
        [(name, score, f"{score:,.2f}") for name, score, _ in data.top_categories or ()],
        colour="#159f74",
    )
    popular = bar_chart(
        [(f"{name} ({kind})", float(n), f"{n:,}") for kind, name, n in data.popular],
        colour="#5b7cfa",
    )
    return _ENV.get_template("page.html").render(
        data=data,
        style=markupsafe.Markup(_STYLE),
        week=stacked_chart(data.daily, end, 7),
        month=stacked_chart(data.daily, end, 30),
        categories=categories,
        popular=popular,
        writer_stats=_writer_stats(data),
        dropped=_dropped(data.writer),
        known_types=set(TYPE_COLOURS),
        experiment=comparison_chart(data.experiment) if data.experiment else None,
    )


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _dropped(writer: Mapping[str, object]) -> list[tuple[str, int]]:
    dropped = writer.get("dropped")
    if not isinstance(dropped, Mapping):
        return []
    return sorted(((str(k), _int(v)) for k, v in dropped.items() if _int(v)), key=lambda r: -r[1])


def _writer_stats(data: DashboardData) -> list[tuple[str, str, bool]]:
    w = data.writer
    dropped = sum(n for _, n in _dropped(w))
    out = [
        ("accepted", f"{_int(w.get('accepted')):,}", False),
        ("written", f"{_int(w.get('stored')):,}", False),
        ("queued", f"{_int(w.get('in_flight')):,}", False),
        ("duplicates", f"{_int(w.get('duplicates')):,}", False),
        ("dropped", f"{dropped:,}", False),
        ("errors", f"{_int(w.get('errors')):,}", _int(w.get("errors")) > 0),
    ]
    if data.dead_lettered is not None:
        out.append(("dead-lettered", f"{data.dead_lettered:,}", data.dead_lettered > 0))
    return out


# ------------------------------------------------------------------- access


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def authorized(authorization_header: str | None, settings: Settings) -> bool:
    """Whether the request carries the dashboard token or basic credentials.

    The token comes as ``Authorization: Bearer`` (never in the URL, which ends up
    in access logs); basic credentials are ``dashboard_user`` and
    ``dashboard_password``. Nothing configured: refused.
    """
    token = settings.dashboard_token
    user, password = settings.dashboard_user, settings.dashboard_password
    if not authorization_header:
        return False
    scheme, _, value = authorization_header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer":
        return bool(token) and _same(value, token or "")
    if scheme != "basic" or not user or not password:
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    given_user, sep, given_password = decoded.partition(":")
    # Both compared every time, so the timing does not tell which one was wrong.
    user_ok = _same(given_user, user)
    password_ok = _same(given_password, password)
    return bool(sep) and user_ok and password_ok


class _Service(Protocol):
    """What :func:`respond` needs of :class:`~penchant.Penchant`."""

    settings: Settings

    @property
    def store(self) -> Any: ...
    @property
    def catalog(self) -> Catalog: ...
    def health(self) -> dict[str, object]: ...


def respond(
    service: _Service,
    *,
    authorization_header: str | None,
    now: datetime,
    experiment: Report | Callable[[], Report | None] | None = None,
) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """``(status, headers, body)`` of a dashboard request: 401 unless authorized.

    Without an ``experiment``, the service's own ``report()`` is used when it has one.
    """
    if not authorized(authorization_header, service.settings):
        return 401, UNAUTHORIZED_HEADERS, UNAUTHORIZED_BODY
    if experiment is None:
        build = getattr(service, "report", None)
        experiment = build if callable(build) else None
    data = collect(
        service.store,
        service.health(),
        now,
        catalog=service.catalog,
        experiment=experiment,
    )
    return 200, DASHBOARD_HEADERS, render(data).encode("utf-8")
