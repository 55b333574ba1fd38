"""The pages through Starlette's TestClient (no browser, no server): each renders, shows the titles it should,
and refuses what it must with a 400 / 404 page, never a traceback."""

from __future__ import annotations

import html
import re
import time

import pytest

pytest.importorskip("starlette", reason="ledrec look needs the look extra: pip install -e '.[look]'")
pytest.importorskip("httpx2", reason="Starlette's TestClient needs httpx2")

from starlette.testclient import TestClient

from ledrec.look.app import create_app
from ledrec.look.data import Look

PAGES = ["/", "/?catalogue=fr&h=m21&h=m25", "/?catalogue=de&user=u70", "/?q=toy", "/item?catalogue=fr&id=m21", "/map",
         "/map?catalogue=fr&user=u1", "/pipeline", "/pipeline/de.svg"]  # fmt: skip


@pytest.fixture(scope="module")
def look(world):
    return Look(world["root"], world["items"], world["events"], map_method="pca")


@pytest.fixture(scope="module")
def client(look):
    with TestClient(create_app(look)) as client:
        yield client


def titles(html: str, table: str) -> list[str]:
    """The titles of one item table of a page (its id), in order."""
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'data-id="[^"]+">([^<]+)</a>', body)


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_in_well_under_a_second(client, url):
    t0 = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200, response.text[:500]
    assert time.perf_counter() - t0 < 1.0
    assert "Traceback" not in response.text


def test_figure8_puts_a_typed_history_beside_the_three_sources(client):
    html = client.get("/?catalogue=fr&h=m21&h=m25").text
    assert "Toy Story (1995)" in html and "Aladdin (1992)" in html
    for source in ("gbo", "cbo", "led"):
        shown = titles(html, f"{source}-table")
        assert len(shown) == 10 and "Toy Story (1995)" not in shown
    assert all(t.startswith("Animation") for t in titles(html, "led-table")[:5])


def test_search_add_and_drop_travel_in_the_query_string(client):
    html = client.get("/?catalogue=fr&q=toy+story").text
    assert 'name="add" value="m21"' in html
    added = client.get("/?catalogue=fr&h=m25&q=toy&add=m21", follow_redirects=False)
    assert added.status_code == 303 and added.headers["location"] == "/?catalogue=fr&h=m25&h=m21"
    dropped = client.get("/?catalogue=fr&h=m25&h=m21&q=toy&drop=m25", follow_redirects=False)
    assert dropped.headers["location"] == "/?catalogue=fr&h=m21&q=toy"


def test_a_user_and_a_random_user(client):
    html = client.get("/?catalogue=de&user=u70").text
    assert "history of user u70" in html and len(titles(html, "led-table")) == 10
    moved = client.get("/?catalogue=de&random=1", follow_redirects=False)
    assert moved.status_code == 303 and re.fullmatch(r"/\?catalogue=de&user=u\d+", moved.headers["location"])


def test_the_item_page_lists_neighbours_and_histories(client):
    html = client.get("/item?catalogue=fr&id=m21").text
    assert "Toy Story (1995)" in html and "Animation" in html
    neighbours = titles(html, "similar-table")
    assert len(neighbours) == 20  # fr's nine other animated films first: the model's vectors are the genres
    assert all(t.startswith(("Animation", "Aladdin")) for t in neighbours[:9])
    assert "/?catalogue=fr&amp;user=u" in html


def test_the_map_draws_circles_with_titles_and_the_history(client):
    html = client.get("/map?catalogue=fr&h=m21&h=m25").text
    assert html.count("<circle") == 40 and "<title>Toy Story (1995) (Animation)</title>" in html
    assert html.count('class="history"') == 2 and html.count('class="rec"') == 10
    assert "PCA" in html


def test_the_pipeline_page_shows_versions_decisions_and_rollbacks(client):
    html = client.get("/pipeline").text
    for text in ("fr", "de", "refused", "rollback", "(current)", "0.25", "/pipeline/de.svg"):
        assert text in html
    svg = client.get("/pipeline/fr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text


def test_catalogue_selector_and_images(world):
    look = Look(world["export"], world["images"], None, map_method="pca")
    with TestClient(create_app(look)) as client:
        html = client.get("/?catalogue=de&h=m42").text
        assert '<option value="de" selected>' in html and "Casablanca (1942)" in html
        assert '<img src="/static/img/42.jpg"' in html and "javascript:" not in html
        assert "needs the event table" in html
        assert client.get("/pipeline").status_code == 404  # an export is not a published root


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/item?catalogue=fr&id=nope", 404, "no item 'nope'"),
        ("/item?catalogue=fr", 400, "which item"),
        ("/?catalogue=xx", 404, "no catalogue 'xx'"),
        ("/?catalogue=fr&user=nobody", 404, "no user 'nobody'"),
        ("/?k=0", 400, "k must be in 1..100"),
        ("/?k=ten", 400, "k must be a whole number"),
        ("/map?k=1000", 400, "k must be in"),
        ("/pipeline/xx.svg", 404, "no catalogue 'xx'"),
        ("/nowhere", 404, "Not Found"),
        ("/?h=" + "&h=".join(f"i{i}" for i in range(501)), 400, "at most 500"),
    ],
)
def test_errors_are_pages_not_tracebacks(client, url, status, says):
    response = client.get(url)
    assert response.status_code == status
    assert says in html.unescape(response.text) and "Traceback" not in response.text and "<html" in response.text


def test_a_failing_page_is_a_500_page_and_the_log_says_why(look, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(look, "recommend", broken)
    with TestClient(create_app(look)) as client:
        response = client.get("/?catalogue=fr&h=m21")
    assert response.status_code == 500 and "boom" not in response.text and "Traceback" not in response.text
    assert "boom" in caplog.text
