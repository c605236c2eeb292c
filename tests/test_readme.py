"""The README is executed: each marked example runs as printed, on a fresh SQLite file.

README.md marks the examples it promises work with an HTML comment on the line
before the fence, ``<!-- readme-test: NAME -->``. Each Python example is written
verbatim into a module of a new folder, imported by a subprocess started in that
folder (so the default ``sqlite:///penchant.db`` is a new file there, and the
environment holds no penchant setting), and sent a browser's page request; the
writer is flushed by the ASGI lifespan shutdown or at process exit, as in a
server. The test then reads ``user_interactions`` with plain sqlite3. The shell
examples run line by line through bash, in such a folder. Nothing here creates a
table or wires penchant by hand: what the README shows is all there is.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = re.compile(r"<!-- readme-test: ([a-z0-9_-]+) -->")

# Every name the README marks, each run by a test below.
EXAMPLES = {"tour", "starlette", "fastapi", "flask", "wsgi", "asgi", "seed", "db", "cli"}

# A real browser's navigation: what makes a response a page view.
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.5",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
}
VISITOR_ADDRESS = "203.0.113.7"

# Imports the example and sends its requests. "asgi": Starlette's TestClient,
# entered so the lifespan starts and shuts down (flushing penchant's writer);
# "asgi-plain": httpx's transport, no lifespan (the writer is flushed at exit);
# "wsgi": one call of the application per request, as a WSGI server makes it.
DRIVER = r"""
import asyncio, importlib, json, sys

mode, module, attribute, address = sys.argv[1:5]
headers, requests = json.loads(sys.argv[5]), json.loads(sys.argv[6])
app = getattr(importlib.import_module(module), attribute)
answers = []

if mode == "asgi":
    from starlette.testclient import TestClient

    with TestClient(app, base_url="http://127.0.0.1:8000", client=(address, 50000)) as client:
        for method, path in requests:
            r = client.request(method, path, headers=headers)
            answers.append([r.status_code, r.headers.get("content-type", ""), r.text])
elif mode == "asgi-plain":
    import httpx

    async def send_all():
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            for method, path in requests:
                r = await c.request(method, path, headers=headers)
                answers.append([r.status_code, r.headers.get("content-type", ""), r.text])

    asyncio.run(send_all())
elif mode == "wsgi":
    from wsgiref.util import setup_testing_defaults

    for method, path in requests:
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "REMOTE_ADDR": address}
        environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
        setup_testing_defaults(environ)
        started = []

        def start_response(status, response_headers, exc_info=None):
            started.append((status, response_headers))
            return lambda data: None

        body = app(environ, start_response)
        try:
            text = b"".join(body).decode()
        finally:
            if hasattr(body, "close"):
                body.close()
        status, response_headers = started[-1]
        content_type = dict((k.lower(), v) for k, v in response_headers).get("content-type", "")
        answers.append([int(status.split()[0]), content_type, text])
else:
    raise SystemExit("unknown mode " + mode)

print(json.dumps(answers))
"""


def readme_examples() -> dict[str, tuple[str, str]]:
    """The marked code blocks of README.md by name: (language, code)."""
    lines = README.read_text(encoding="utf-8").splitlines(keepends=True)
    found: dict[str, tuple[str, str]] = {}
    for i, line in enumerate(lines):
        match = MARKER.fullmatch(line.strip())
        if match is None:
            continue
        name = match.group(1)
        assert name not in found, f"README.md marks two examples {name!r}"
        fence = lines[i + 1] if i + 1 < len(lines) else ""
        assert fence.startswith("```"), f"README.md: no code fence right after {line.strip()}"
        end = next((j for j in range(i + 2, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"README.md: the example {name!r} has no closing fence"
        found[name] = (fence[3:].strip(), "".join(lines[i + 2 : end]))
    return found


def example(name: str, language: str) -> str:
    examples = readme_examples()
    if name not in examples:
        pytest.fail(
            f"README.md has no example marked <!-- readme-test: {name} --> "
            "(removed or renamed? mark it again, or change tests/test_readme.py with it)"
        )
    found, code = examples[name]
    assert found == language, f"README example {name!r} is {found!r}, expected {language!r}"
    return code


def environment() -> dict[str, str]:
    """The developer's environment without any penchant setting; this tree's penchant."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("PENCHANT_", "DATABASE_URL", "PERSONALIZATION_", "INTERACTION_", "AFFINITY_")
        )
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # the `penchant` command installed next to this interpreter
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
    return env


def run_example(
    folder: Path,
    name: str,
    module: str,
    attribute: str,
    mode: str,
    requests: list[tuple[str, str]],
) -> tuple[list[tuple[int, str, str]], str]:
    """Write the example to ``folder/module.py``, send it ``requests``: (answers, stderr)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(example(name, "python"), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            f"error::Warning:{module}",  # a deprecated call in the example itself fails
            "-c",
            DRIVER,
            mode,
            module,
            attribute,
            VISITOR_ADDRESS,
            json.dumps(BROWSER),
            json.dumps(requests),
        ],
        cwd=folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"README example {name!r} failed:\n{done.stderr}"
    answers = [(int(s), str(c), str(t)) for s, c, t in json.loads(done.stdout.splitlines()[-1])]
    return answers, done.stderr


def stored(folder: Path) -> list[tuple[str, str, str, int | None, Any]]:
    """(visitor, type, target type, target id, extra data) of every stored interaction."""
    database = folder / "penchant.db"
    assert database.exists(), f"nothing stored: no {database}"
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(
            "SELECT user_id, interaction_type, target_type, target_id, extra_data "
            "FROM user_interactions ORDER BY id"
        ).fetchall()
    return [(u, i, t, n, json.loads(e) if e else None) for u, i, t, n, e in rows]


def shell_lines(code: str) -> list[str]:
    return [
        line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def run_line(folder: Path, line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line],
        cwd=folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_page_view(folder: Path, path: str) -> None:
    rows = stored(folder)
    assert [(i, t, n, e) for _, i, t, n, e in rows] == [("view", "page", None, {"path": path})]
    assert re.fullmatch(r"[0-9a-f]{32}", rows[0][0])


def test_every_marked_example_is_run() -> None:
    marked = set(readme_examples())
    assert not EXAMPLES - marked, f"README.md lost the examples {sorted(EXAMPLES - marked)}"
    assert not marked - EXAMPLES, f"no test runs the README examples {sorted(marked - EXAMPLES)}"


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Any], str]]:
    """The tour as tour.py, after a visitor viewed procedure 1 and asked for a consultation."""
    folder = tmp_path_factory.mktemp("tour")
    requests = [("GET", "/procedures/1"), ("POST", "/procedures/1/consultation")]
    answers, stderr = run_example(folder, "tour", "tour", "app", "asgi", requests)
    yield folder, answers, stderr


def test_the_tour_stores_the_page_view_and_the_server_side_event(
    tour: tuple[Path, list[Any], str],
) -> None:
    folder, answers, stderr = tour
    (status, content_type, page), (posted, _, thanks) = answers
    assert (status, posted) == (200, 200)
    assert content_type.startswith("text/html")
    assert "<p>Filler: Related to Injectables</p>" in page  # as the text after the tour says
    assert "Thank you" in thanks
    rows = stored(folder)
    assert sorted((i, t, n) for _, i, t, n, _ in rows) == [
        ("form_submit", "procedure", 1),  # p.track(...) in the consultation view
        ("view", "procedure", 1),  # /procedures/1 through url_patterns
    ]
    assert len({user for user, *_ in rows}) == 1
    # the tour's secret_key is the key, not one generated and kept in the database
    assert "no secret key configured" not in stderr
    with closing(sqlite3.connect(folder / "penchant.db")) as connection:
        affinities = connection.execute(
            "SELECT user_id, category_id, affinity_score FROM user_category_affinity"
        ).fetchall()
    # view +0.1 and form_submit +0.5 on the procedure's category, Injectables
    assert [(u, c) for u, c, _ in affinities] == [(rows[0][0], 1)]
    assert affinities[0][2] == pytest.approx(0.6, abs=0.01)


def test_starlette_page_view(tmp_path: Path) -> None:
    answers, _ = run_example(tmp_path, "starlette", "site_starlette", "app", "asgi", [("GET", "/")])
    [(status, content_type, page)] = answers
    assert (status, content_type.split(";")[0]) == (200, "text/html")
    assert '<script defer src="/personalization/tracker.js' in page
    assert_one_page_view(tmp_path, "/")


def test_fastapi_page_view_and_json_route(tmp_path: Path) -> None:
    requests = [("GET", "/"), ("GET", "/for-you")]
    answers, _ = run_example(tmp_path, "fastapi", "site_fastapi", "app", "asgi", requests)
    (status, content_type, _), (json_status, json_type, body) = answers
    assert (status, content_type.split(";")[0]) == (200, "text/html")
    assert (json_status, json_type, json.loads(body)) == (200, "application/json", [])
    assert_one_page_view(tmp_path, "/")  # the JSON response is no page view


def test_flask_page_view(tmp_path: Path) -> None:
    answers, _ = run_example(tmp_path, "flask", "site_flask", "app", "wsgi", [("GET", "/")])
    [(status, content_type, _)] = answers
    assert (status, content_type.split(";")[0]) == (200, "text/html")
    assert_one_page_view(tmp_path, "/")


def test_wsgi_page_view(tmp_path: Path) -> None:
    answers, _ = run_example(tmp_path, "wsgi", "site_wsgi", "application", "wsgi", [("GET", "/")])
    [(status, _, page)] = answers
    assert status == 200
    assert "Doctors for you" in page
    assert_one_page_view(tmp_path, "/")


def test_asgi_page_view(tmp_path: Path) -> None:
    answers, _ = run_example(tmp_path, "asgi", "site_asgi", "app", "asgi-plain", [("GET", "/")])
    [(status, _, page)] = answers
    assert status == 200
    assert "For you" in page
    assert_one_page_view(tmp_path, "/")


def test_the_original_api_stores_its_event_under_the_keyed_fingerprint(tmp_path: Path) -> None:
    answers, stderr = run_example(
        tmp_path, "seed", "seed", "app", "wsgi", [("GET", "/procedures/3")] * 2
    )
    assert [(status, text) for status, _, text in answers] == [
        (200, "<p>Botox</p>"),
        # read-your-writes: the view just tracked is seen, and seen items are left out
        (200, "<p></p>"),
    ]
    rows = stored(tmp_path)
    assert [(i, t, n) for _, i, t, n, _ in rows] == [("view", "procedure", 3)] * 2
    visitor = rows[0][0]
    assert {user for user, *_ in rows} == {visitor}
    # keyed with the configured secret: not the original unkeyed MD5 of the same parts
    parts = f"{BROWSER['User-Agent']}|{VISITOR_ADDRESS}|{BROWSER['Accept-Language']}"
    assert re.fullmatch(r"[0-9a-f]{32}", visitor)
    assert visitor != hashlib.md5(parts.encode()).hexdigest()
    assert "no secret key configured" not in stderr
    with closing(sqlite3.connect(tmp_path / "penchant.db")) as connection:
        affinity = connection.execute(
            "SELECT user_id, category_id, affinity_score FROM user_category_affinity"
        ).fetchall()
    assert affinity == [(visitor, 1, pytest.approx(0.2, abs=0.01))]  # two views, +0.1 each


def test_db_commands_make_an_empty_folder_current(tmp_path: Path) -> None:
    lines = shell_lines(example("db", "sh"))
    assert [shlex.split(line, comments=True)[:3] for line in lines] == [
        ["penchant", "db", "upgrade"],
        ["penchant", "db", "current"],
    ]
    for line in lines:
        done = run_line(tmp_path, line)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
    assert "(current)" in done.stdout
    with closing(sqlite3.connect(tmp_path / "penchant.db")) as connection:
        assert connection.execute("SELECT count(*) FROM user_interactions").fetchone() == (0,)


def test_cli_commands_after_the_tour(tour: tuple[Path, list[Any], str]) -> None:
    folder = tour[0]
    visitor = stored(folder)[0][0]
    outputs: dict[str, tuple[list[str], str]] = {}
    for line in shell_lines(example("cli", "sh")):
        line = re.sub(r"\b[0-9a-f]{32}\b", visitor, line)  # the README's example fingerprint
        done = run_line(folder, line)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        words = shlex.split(line, comments=True)
        assert words[0] == "penchant", line
        outputs[words[1]] = (words, done.stdout)
    assert set(outputs) == {"db", "stats", "export"}, "tests/test_readme.py checks these three"

    assert "(current)" in outputs["db"][1]
    stats = outputs["stats"][1]
    assert re.search(r"\bview\s+1\b", stats), stats
    assert re.search(r"\bform_submit\s+1\b", stats), stats

    words, printed = outputs["export"]
    exported = (
        (folder / words[words.index("--output") + 1]).read_text()
        if "--output" in words
        else printed
    )
    data = json.loads(exported)
    assert data["user_id"] == visitor
    assert sorted(
        (i["interaction_type"], i["target_type"], i["target_id"]) for i in data["interactions"]
    ) == [("form_submit", "procedure", 1), ("view", "procedure", 1)]
