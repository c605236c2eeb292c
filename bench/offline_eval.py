"""Offline evaluation of penchant's ranking on a public event log (MovieLens-100K).

    python -m bench.offline_eval [--quick] [--json] [--seeds 5]

Each rating is replayed as a ``view`` of a procedure (a movie); genres stand in
for categories. Events go through penchant's own engine API, in time order and
in batches, the way the writer stores them: ``fold`` and ``AffinityDelta.apply``
for affinities, ``pair_increments`` for co-occurrence (kept in a dict standing
in for the store's neighbour table, trimmed to the top N per item), distinct
visitors per item and per category for popularity, and ``recommend`` to rank.

Protocol: per visitor, events sorted by time; the last one is held out, the
rest are the visitor's history. Every item is ranked, the visitor's history
excluded. Ties are broken at random: each seed relabels items and categories
with a random permutation (ranking breaks ties by id). Reported per strategy
(mean over seeds, with the spread across seeds):

- ``hr@10``, ``hr@20``: share of visitors whose held-out item is in the top k;
- ``ndcg@10``: ``1 / log2(rank + 1)`` for a hit in the top 10, else 0;
- ``mrr@20``: ``1 / rank`` for a hit in the top 20, else 0;
- ``coverage@20``: share of the catalogue appearing in at least one top 20;
- ``popularity@20``: mean share of visitors who had seen a recommended item;
- ``category_hr@1``, ``category_hr@3``: one of the held-out item's genres is
  among the top 1 / top 3 recommended categories.

The data comes from the ``recbole==1.2.1`` wheel (``pip download``, into
``bench/data/``, which git ignores). Its licence forbids redistribution: never
commit it.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import time
import zipfile
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from penchant.config import DEFAULT_WEIGHTS
from penchant.engine.affinity import AffinityState, fold
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.cooccurrence import pair_increments
from penchant.engine.events import Interaction
from penchant.engine.ranking import (
    HistoryEntry,
    Popularity,
    Recommendation,
    VisitorProfile,
    popular,
    recommend,
)

__all__ = ["main"]

DATA_DIR = Path(__file__).resolve().parent / "data"
WHEEL = "recbole-1.2.1-py3-none-any.whl"
INSIDE = "recbole/dataset_example/ml-100k/"
STRATEGIES = ("popular", "original", "blended")
RATE = 0.95
BATCH = 2_000  # events per replayed batch, as the writer would store them
NEIGHBOURS = 50  # top-N neighbours kept per item, as in the store
WINDOW = timedelta(days=1)  # co-occurrence window (pair_increments' default)
GOALS = {"hr@20": 0.23, "category_hr@1": 0.46, "category_hr@3": 0.85}
HISTORY_CUTS = (1, 2, 3, 5, 10, 20)  # "a visitor with only their last n events"

Key = tuple[str, int]


# ----------------------------------------------------------------------- data
@dataclass(frozen=True, slots=True)
class Rating:
    user: int
    item: int
    timestamp: int
    position: int  # line in the file: a stable order for equal timestamps


def ensure_data() -> Path:
    """The recbole wheel in bench/data/, downloaded with pip when missing."""
    wheel = DATA_DIR / WHEEL
    if wheel.exists():
        return wheel
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    print(f"downloading MovieLens-100K (inside the recbole 1.2.1 wheel) into {DATA_DIR} ...")
    command = [sys.executable, "-m", "pip", "download", "recbole==1.2.1", "--no-deps", "-q"]
    done = subprocess.run([*command, "-d", str(DATA_DIR)], check=False)
    if done.returncode != 0 or not wheel.exists():
        raise SystemExit(
            "could not download the recbole 1.2.1 wheel that carries MovieLens-100K.\n"
            f"Run `pip download recbole==1.2.1 --no-deps -d {DATA_DIR}` with access to PyPI,\n"
            "or copy the wheel there by hand, then run this again."
        )
    return wheel


def load(wheel: Path) -> tuple[list[Rating], dict[int, tuple[str, tuple[str, ...]]]]:
    """Ratings, and each movie's title and genres."""
    with zipfile.ZipFile(wheel) as archive:
        inter = archive.read(INSIDE + "ml-100k.inter").decode("latin-1").splitlines()
        item = archive.read(INSIDE + "ml-100k.item").decode("latin-1").splitlines()
    ratings: list[Rating] = []
    for position, line in enumerate(inter[1:]):
        user, movie, _rating, stamp = line.split("\t")
        ratings.append(Rating(int(user), int(movie), int(float(stamp)), position))
    movies: dict[int, tuple[str, tuple[str, ...]]] = {}
    for line in item[1:]:
        movie, title, _year, genres = [*line.split("\t"), "", "", ""][:4]
        movies[int(movie)] = (title, tuple(g for g in genres.split() if g))
    return ratings, movies


# -------------------------------------------------------------- one seed's world
@dataclass
class World:
    """Everything ranking needs after the training events were replayed."""

    catalog: Catalog
    popularity: Popularity
    neighbours: dict[Key, list[tuple[Key, float]]]
    histories: dict[int, list[Interaction]]  # training events per visitor, oldest first
    affinities: dict[int, dict[int, AffinityState]]
    held_out: dict[int, Interaction]
    visitors: int


def build(
    ratings: Sequence[Rating],
    movies: Mapping[int, tuple[str, tuple[str, ...]]],
    seed: int,
    *,
    window: timedelta = WINDOW,
    neighbours: int = NEIGHBOURS,
) -> World:
    rng = random.Random(seed)
    genres = sorted({g for _, gs in movies.values() for g in gs})
    genre_ids = dict(zip(genres, rng.sample(range(1, len(genres) + 1), len(genres)), strict=True))
    movie_ids = dict(
        zip(sorted(movies), rng.sample(range(1, len(movies) + 1), len(movies)), strict=True)
    )
    catalog = Catalog(
        [Category(genre_ids[g], g) for g in genres],
        [
            Item("procedure", movie_ids[m], title, tuple(genre_ids[g] for g in gs))
            for m, (title, gs) in movies.items()
        ],
    )

    by_user: dict[int, list[Rating]] = defaultdict(list)
    for r in ratings:
        by_user[r.user].append(r)
    held_out: dict[int, Interaction] = {}
    training: list[Interaction] = []
    for user, rs in by_user.items():
        rs.sort(key=lambda r: (r.timestamp, r.position))
        events = [_interaction(r, movie_ids) for r in rs]
        held_out[user] = events[-1]
        training.extend(events[:-1])
    training.sort(key=lambda e: (e.timestamp, e.event_id))

    # Replay the training log in batches, as the writer stores it.
    affinity_rows: dict[tuple[str, int], AffinityState] = {}
    table: dict[Key, dict[Key, float]] = defaultdict(dict)
    stored: dict[str, list[HistoryEntry]] = defaultdict(list)
    stamps: dict[str, list[datetime]] = defaultdict(list)
    for start in range(0, len(training), BATCH):
        batch = training[start : start + BATCH]
        for delta in fold(batch, catalog, DEFAULT_WEIGHTS, RATE):
            key = (delta.user_id, delta.category_id)
            affinity_rows[key] = delta.apply(affinity_rows.get(key), RATE)
        since = batch[0].timestamp - window
        recent = {
            user: stored[user][bisect_left(stamps[user], since) :]
            for user in {e.user_id for e in batch}
        }
        for (a, b), weight in pair_increments(batch, recent, window=window).items():
            row = table[a]
            row[b] = row.get(b, 0.0) + weight
        for e in batch:
            assert e.target_id is not None
            stored[e.user_id].append(
                HistoryEntry(e.interaction_type, e.target_type, e.target_id, e.timestamp)
            )
            stamps[e.user_id].append(e.timestamp)
    trimmed = {
        key: sorted(row.items(), key=lambda kv: (-kv[1], kv[0]))[:neighbours]
        for key, row in table.items()
    }

    # Popularity in distinct visitors per item. A category's is the sum over its
    # items (distinct visitor-item pairs): almost every visitor touches every large
    # genre, so distinct visitors per genre would barely tell genres apart.
    item_visitors: dict[int, set[str]] = defaultdict(set)
    for e in training:
        assert e.target_id is not None
        item_visitors[e.target_id].add(e.user_id)
    item_counts = {i: len(v) for i, v in item_visitors.items()}
    category_counts: dict[int, int] = defaultdict(int)
    for i, n in item_counts.items():
        for cid in catalog.categories_of("procedure", i):
            category_counts[cid] += n
    popularity = Popularity({"procedure": item_counts, "category": dict(category_counts)})
    histories: dict[int, list[Interaction]] = defaultdict(list)
    for e in training:
        histories[int(e.user_id)].append(e)
    affinities: dict[int, dict[int, AffinityState]] = defaultdict(dict)
    for (visitor, cid), state in affinity_rows.items():
        affinities[int(visitor)][cid] = state
    return World(catalog, popularity, trimmed, histories, affinities, held_out, len(by_user))


def _interaction(r: Rating, movie_ids: Mapping[int, int]) -> Interaction:
    return Interaction(
        user_id=str(r.user),
        session_id="",
        interaction_type="view",
        target_type="procedure",
        target_id=movie_ids[r.item],
        timestamp=datetime.fromtimestamp(r.timestamp, UTC).replace(tzinfo=None),
        event_id=f"{r.position:032x}",
    )


def profile_of(world: World, user: int, last: int | None = None) -> VisitorProfile:
    """The visitor as ranking sees them; ``last``: only their last n events."""
    events = world.histories[user]
    if last is None:
        affinities: Mapping[int, AffinityState] = world.affinities[user]
    else:
        events = events[-last:]
        affinities = {
            d.category_id: d.apply(None, RATE)
            for d in fold(events, world.catalog, DEFAULT_WEIGHTS, RATE)
        }
    history = [
        HistoryEntry(e.interaction_type, e.target_type, e.target_id, e.timestamp)
        for e in reversed(events)
        if e.target_id is not None
    ]
    return VisitorProfile(str(user), affinities, history)


# --------------------------------------------------------------------- metrics
@dataclass
class Tally:
    """Accumulated metrics of one strategy."""

    users: int = 0
    hr10: float = 0.0
    ndcg10: float = 0.0
    hr20: float = 0.0
    mrr20: float = 0.0
    popularity20: float = 0.0
    cat1: float = 0.0
    cat3: float = 0.0
    category_users: int = 0

    def __post_init__(self) -> None:
        self.covered: set[int] = set()

    def add_items(self, ranked: Sequence[int], target: int, shares: Mapping[int, float]) -> None:
        self.users += 1
        self.covered.update(ranked[:20])
        top = ranked[:20]
        self.popularity20 += sum(shares.get(i, 0.0) for i in top) / max(len(top), 1)
        if target in top:
            rank = top.index(target) + 1
            self.hr20 += 1
            self.mrr20 += 1 / rank
            if rank <= 10:
                self.hr10 += 1
                self.ndcg10 += 1 / math.log2(rank + 1)

    def add_categories(self, ranked: Sequence[int], wanted: Iterable[int]) -> None:
        wanted = set(wanted)
        if not wanted:
            return
        self.category_users += 1
        self.cat1 += bool(wanted & set(ranked[:1]))
        self.cat3 += bool(wanted & set(ranked[:3]))

    def result(self, catalogue: int) -> dict[str, float]:
        n = max(self.users, 1)
        c = max(self.category_users, 1)
        return {
            "hr@10": self.hr10 / n,
            "ndcg@10": self.ndcg10 / n,
            "hr@20": self.hr20 / n,
            "mrr@20": self.mrr20 / n,
            "coverage@20": len(self.covered) / catalogue,
            "popularity@20": self.popularity20 / n,
            "category_hr@1": self.cat1 / c,
            "category_hr@3": self.cat3 / c,
        }


def rank_items(world: World, strategy: str, profile: VisitorProfile, now: datetime) -> list[int]:
    if strategy == "popular":
        seen = frozenset((h.target_type, h.target_id) for h in profile.history)
        recs = popular("procedures", world.catalog, world.popularity, limit=20, exclude=seen)
    else:
        recs = _recommend(world, "procedures", strategy, profile, now, 20)
    return [r.item.id for r in recs]


def rank_categories(
    world: World, strategy: str, profile: VisitorProfile, now: datetime
) -> list[int]:
    if strategy == "popular":
        recs = popular("categories", world.catalog, world.popularity, limit=3)
    else:
        recs = _recommend(world, "categories", strategy, profile, now, 3)
    return [r.item.id for r in recs]


def _recommend(
    world: World, content: str, strategy: str, profile: VisitorProfile, now: datetime, limit: int
) -> list[Recommendation]:
    return recommend(
        content,
        catalog=world.catalog,
        profile=profile,
        popularity=world.popularity,
        neighbours=world.neighbours,
        now=now,
        limit=limit,
        strategy=strategy,
        rate=RATE,
    )


@dataclass(frozen=True, slots=True)
class SeedResult:
    overall: dict[str, dict[str, float]]  # strategy -> metric -> value
    by_cut: dict[int, dict[str, float]]  # last n events -> strategy -> HR@20
    by_length: dict[str, tuple[dict[str, float], int]]  # bucket -> (HR@20s, visitors)


def evaluate(world: World, *, cuts: Sequence[int] = HISTORY_CUTS) -> SeedResult:
    """One seed: overall metrics per strategy, and HR@20 by history length."""
    shares = {i: n / world.visitors for i, n in world.popularity.counts["procedure"].items()}
    overall = {s: Tally() for s in STRATEGIES}
    by_cut = {cut: {s: Tally() for s in STRATEGIES} for cut in cuts}
    by_length: dict[str, dict[str, Tally]] = defaultdict(lambda: {s: Tally() for s in STRATEGIES})
    for user, target in world.held_out.items():
        assert target.target_id is not None
        now = target.timestamp
        wanted = world.catalog.categories_of("procedure", target.target_id)
        profile = profile_of(world, user)
        bucket = _length_bucket(len(profile.history))
        for strategy in STRATEGIES:
            ranked = rank_items(world, strategy, profile, now)
            overall[strategy].add_items(ranked, target.target_id, shares)
            by_length[bucket][strategy].add_items(ranked, target.target_id, shares)
            overall[strategy].add_categories(rank_categories(world, strategy, profile, now), wanted)
        for cut in cuts:
            short = profile_of(world, user, last=cut)
            for strategy in STRATEGIES:
                ranked = rank_items(world, strategy, short, now)
                by_cut[cut][strategy].add_items(ranked, target.target_id, shares)
    size = len(world.catalog.items("procedure"))
    return SeedResult(
        overall={s: t.result(size) for s, t in overall.items()},
        by_cut={c: {s: t.result(size)["hr@20"] for s, t in v.items()} for c, v in by_cut.items()},
        by_length={
            b: ({s: t.result(size)["hr@20"] for s, t in v.items()}, v["popular"].users)
            for b, v in by_length.items()
        },
    )


_LENGTHS = ((19, 30), (31, 60), (61, 120), (121, 250), (251, 10_000))


def _length_bucket(n: int) -> str:
    for low, high in _LENGTHS:
        if n <= high:
            return f"{low}-{high}" if high < 10_000 else f"{low}+"
    return f"{_LENGTHS[-1][0]}+"


# --------------------------------------------------------------------- latency
def latency(*, items: int = 10_000, calls: int = 2_000, seed: int = 0) -> dict[str, float]:
    """``recommend`` for a returning visitor at a synthetic 10k-item catalogue (ms)."""
    rng = random.Random(seed)
    categories = [Category(c, f"Category {c}") for c in range(1, 41)]
    catalog = Catalog(
        categories,
        [
            Item("procedure", i, f"Procedure {i}", tuple(rng.sample(range(1, 41), 2)))
            for i in range(1, items + 1)
        ],
    )
    popularity = Popularity(
        {
            "procedure": {i: int(rng.paretovariate(1.2) * 10) for i in range(1, items + 1)},
            "category": {c: rng.randint(10, 5_000) for c in range(1, 41)},
        }
    )
    neighbours: dict[Key, list[tuple[Key, float]]] = {
        ("procedure", i): sorted(
            ((("procedure", rng.randint(1, items)), rng.random() * 10) for _ in range(NEIGHBOURS)),
            key=lambda kv: -kv[1],
        )
        for i in range(1, items + 1)
    }
    now = datetime(2024, 6, 1)
    profiles = []
    for v in range(50):
        history = [
            HistoryEntry(
                "view", "procedure", rng.randint(1, items), now - timedelta(minutes=5 * k + v)
            )
            for k in range(50)
        ]
        affinities = {
            c: AffinityState(c, min(1.0, r), r, now - timedelta(days=rng.random() * 10))
            for c in rng.sample(range(1, 41), 10)
            for r in [rng.random() * 3]
        }
        profiles.append(VisitorProfile(f"v{v}", affinities, history))

    def call(profile: VisitorProfile, content: str) -> None:
        recommend(
            content,
            catalog=catalog,
            profile=profile,
            popularity=popularity,
            neighbours=neighbours,
            now=now,
            limit=9,
        )

    started = time.perf_counter()
    call(profiles[0], "procedures")  # builds the popular orders this Popularity keeps
    cold = (time.perf_counter() - started) * 1000
    for p in profiles[:5]:
        call(p, "procedures")
    wall: list[float] = []
    cpu: list[float] = []
    for k in range(calls):
        profile = profiles[k % len(profiles)]
        content = "categories" if k % 10 == 9 else "procedures"
        started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
        call(profile, content)
        cpu.append((time.thread_time_ns() - started_cpu) / 1e6)
        wall.append((time.perf_counter_ns() - started) / 1e6)
    wall.sort()
    cpu.sort()
    p99 = max(0, int(len(wall) * 0.99) - 1)
    return {
        "p50_ms": wall[len(wall) // 2],
        "p99_ms": wall[p99],
        "cpu_p50_ms": cpu[len(cpu) // 2],
        "cpu_p99_ms": cpu[p99],
        "first_call_ms": cold,
    }


# ------------------------------------------------------------------------ main
def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.offline_eval", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 seed, no history-length tables")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    seeds = 1 if args.quick else args.seeds

    wheel = ensure_data()
    ratings, movies = load(wheel)
    print(
        f"MovieLens-100K: {len(ratings)} ratings, {len({r.user for r in ratings})} visitors, "
        f"{len(movies)} items; {seeds} seed(s); last event per visitor held out"
    )
    started = time.perf_counter()
    runs = []
    for seed in range(seeds):
        world = build(ratings, movies, seed)
        runs.append(evaluate(world, cuts=() if args.quick else HISTORY_CUTS))
    elapsed = time.perf_counter() - started

    summary: dict[str, dict[str, float]] = {}
    keys = list(runs[0].overall["popular"])
    print(f"\nNext item, mean over {seeds} seed(s) (± spread across seeds):")
    print(f"{'strategy':<10}" + "".join(f"{k:>20}" for k in keys))
    for strategy in STRATEGIES:
        row = f"{strategy:<10}"
        summary[strategy] = {}
        for k in keys:
            mean, sd = _mean_sd([run.overall[strategy][k] for run in runs])
            summary[strategy][k] = round(mean, 4)
            row += f"{mean:>13.4f} ±{sd:.4f}"
        print(row)

    if not args.quick:
        print("\nHR@20 with only the visitor's last n events (affinity and history from those):")
        print(f"{'n':>6}" + "".join(f"{s:>10}" for s in STRATEGIES) + "   blended >= popular")
        for cut in HISTORY_CUTS:
            values = {s: statistics.fmean(run.by_cut[cut][s] for run in runs) for s in STRATEGIES}
            ok = values["blended"] >= values["popular"]
            print(f"{cut:>6}" + "".join(f"{values[s]:>10.4f}" for s in STRATEGIES) + f"   {ok}")
        print("\nHR@20 by the visitor's full history length:")
        print(f"{'events':>8}{'visitors':>10}" + "".join(f"{s:>10}" for s in STRATEGIES))
        lengths = runs[0].by_length
        for bucket in sorted(lengths, key=lambda b: int(b.split("-")[0].rstrip("+"))):
            values = {
                s: statistics.fmean(run.by_length[bucket][0][s] for run in runs) for s in STRATEGIES
            }
            print(
                f"{bucket:>8}{lengths[bucket][1]:>10}"
                + "".join(f"{values[s]:>10.4f}" for s in STRATEGIES)
            )

    print("\nGoals (blended):")
    for key, goal in GOALS.items():
        value = summary["blended"][key]
        print(f"  {key:<14} {value:.4f} >= {goal}: {'met' if value >= goal else 'NOT met'}")

    timing = latency(calls=500 if args.quick else 2_000)
    print(
        "\nLatency of recommend() for a returning visitor (50 history entries, 10k items, "
        f"{NEIGHBOURS} neighbours each; 9 items, every 10th call categories):\n"
        f"  wall clock  p50 {timing['p50_ms']:.3f} ms, p99 {timing['p99_ms']:.3f} ms "
        "(goal p99 < 10 ms)\n"
        f"  thread CPU  p50 {timing['cpu_p50_ms']:.3f} ms, p99 {timing['cpu_p99_ms']:.3f} ms "
        "(the same calls without time spent waiting for a busy CPU)\n"
        f"  first call  {timing['first_call_ms']:.1f} ms (builds the popular order, "
        "kept for the life of one Popularity)"
    )
    print(f"evaluation took {elapsed:.1f} s")
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
