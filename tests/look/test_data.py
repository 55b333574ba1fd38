"""What the pages show, without a browser or a web server: ledrec.look.data and ledrec.look.jobs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("starlette", reason="ledrec look needs the look extra: pip install -e '.[look]'")

from ledrec.data.interactions import DataError
from ledrec.export.mips import ServingModel
from ledrec.look import jobs
from ledrec.look.data import Look, LookError
from ledrec.serve.retriever import Retriever, RetrieverConfig
from tests.look.conftest import genre


@pytest.fixture(scope="module")
def look(world):
    return Look(world["root"], world["items"], world["events"], map_method="pca")


def ids(rows):
    return [r.id for r in rows]


def test_loads_each_catalogue_of_a_published_root_with_its_users(look):
    assert list(look.catalogues) == ["de", "fr"]
    for cat in look.catalogues.values():
        assert len(cat.members) == 40 and len(cat.users) == 60
        assert cat.popularity.sum() == 60 * 6  # every event of the catalogue counted once
    assert look.published is not None


def test_a_users_history_is_in_time_order(look, world):
    import pyarrow.csv as pacsv

    events = pacsv.read_csv(world["events"]).to_pandas()
    mine = events[events.user == "u3"].sort_values("timestamp").item.tolist()
    cat = look.catalogue("fr")
    assert ids(look.shown(cat, look.user_history(cat, "u3"))) == mine
    with pytest.raises(LookError) as err:
        look.user_history(cat, "u99")  # a user of de
    assert err.value.status == 404


def test_the_three_sources_leave_the_history_out_and_led_answers_as_the_service(look):
    cat = look.catalogue("fr")
    history = look.history_items(cat, ["m21", "m25"])  # two animated films
    recs = look.recommend(cat, history, 5)
    for source in ("gbo", "cbo", "led"):
        assert len(recs[source]) == 5
        assert not {"m21", "m25"} & set(ids(recs[source]))
    service = cat.retriever.recommend(cat.partition, ["m21", "m25"], 5, exclude_seen=True)
    assert ids(recs["led"]) == service.item_ids
    assert np.allclose([r.score for r in recs["led"]], service.scores, rtol=1e-5)
    assert all(genre(int(i[1:])) == 1 for i in ids(recs["led"]))  # LED finds the genre
    # GBO is the catalogue's most popular items, by count of events
    counts = [r.popularity for r in recs["gbo"]]
    assert counts == sorted(counts, reverse=True) and [r.score for r in recs["gbo"]] == counts
    top = np.argsort(-cat.popularity, kind="stable")
    assert recs["gbo"][0].popularity == cat.popularity[top[0]]


def test_a_typed_history_keeps_unknown_ids_marked(look):
    cat = look.catalogue("fr")
    rows = look.shown_ids(cat, ["m21", "nope", "m50"])  # m50 is of de only
    assert [r.known for r in rows] == [True, False, False]
    assert rows[0].title == "Toy Story (1995)"
    assert list(look.history_items(cat, ["m21", "nope", "m50", "m21"])) == [cat.model.indices(np.array(["m21"]))[0]]


def test_search_finds_titles_of_the_catalogue_most_popular_first(look):
    cat = look.catalogue("fr")
    assert ids(look.search(cat, "toy story")) == ["m21"]
    assert ids(look.search(cat, "casablanca")) == []  # a film of de only
    found = look.search(cat, "film", limit=50)
    pops = [r.popularity for r in found]
    assert pops == sorted(pops, reverse=True) and len(found) == 35  # 40 films, 5 of them named


def test_an_items_neighbours_are_its_genre_and_its_holders_have_it(look):
    cat = look.catalogue("fr")
    page = look.item(cat, "m21", k=5)
    assert page["item"].title == "Toy Story (1995)" and page["metadata"]["category"] == "Animation"
    assert len(page["similar"]) == 5 and all(genre(int(i[1:])) == 1 for i in ids(page["similar"]))
    assert "m21" not in ids(page["similar"])
    assert page["n_holders"] == cat.popularity[cat.local[cat.model.indices(np.array(["m21"]))[0]]]
    for holder in page["holders"]:
        assert "m21" in ids(look.shown(cat, look.user_history(cat, holder["user"])))
    with pytest.raises(LookError):
        look.item(cat, "m50")


def test_without_events_led_still_answers(world):
    look = Look(world["export"], None, None, map_method="pca")
    cat = look.catalogue("fr")
    recs = look.recommend(cat, look.history_items(cat, ["m21"]), 3)
    assert recs["gbo"] is None and recs["cbo"] is None and len(recs["led"]) == 3
    assert recs["led"][0].popularity is None and recs["led"][0].title.startswith("m")  # no titles: the ids


def test_one_catalogue_and_events_without_a_partition_column(world, tmp_path):
    from tests.look.conftest import toy_model

    model = toy_model()
    from dataclasses import replace

    one = replace(model, partitions={})
    one.save(tmp_path / "one")
    look = Look(tmp_path / "one", world["items"], world["events_one"], map_method="pca")
    (cat,) = look.catalogues.values()
    assert len(cat.users) == 120 and cat.popularity.sum() == 720


def test_the_map_places_a_sample_of_popular_items(look):
    cat = look.catalogue("fr")
    look.maps.n_items = 25
    projection = look.maps.get(cat)
    assert projection.method == "PCA" and projection.xy.shape == (25, 2) and np.isfinite(projection.xy).all()
    chosen = set(projection.items.tolist())
    assert set(np.argsort(-cat.popularity, kind="stable")[:10].tolist()) <= chosen


def test_the_daily_job_reads_versions_switches_and_decisions(world):
    job = jobs.daily_job(world["root"])
    assert job["runs"] == 3
    de, fr = job["catalogues"]["de"], job["catalogues"]["fr"]
    assert [v["holdout"]["recall@20"] for v in fr["versions"]] == [0.20, 0.25]
    assert fr["current"] == fr["versions"][1]["version"] and de["current"] == de["versions"][0]["version"]
    assert [s["action"] for s in de["switches"]] == ["publish", "publish", "rollback"]
    assert [d["decision"] for d in de["decisions"]] == ["published", "published", "refused"]
    svg = jobs.plot_catalogue("de", de)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "rollback" in svg


def test_other_models_answer_beside_led_each_as_its_service_would(world, tmp_path):
    look = Look(world["root"], world["items"], world["events"], map_method="pca", also={"export": world["export"]})
    for name in ("fr", "de"):
        cat = look.catalogue(name)
        recs = look.recommend(cat, look.history_items(cat, ["m21", "m25"] if name == "fr" else ["m42"]), 5)
        assert list(recs) == ["gbo", "cbo", "led", "export"]
        asked = ["m21", "m25"] if name == "fr" else ["m42"]
        service = Retriever(ServingModel.load(world["export"]), RetrieverConfig(exact_below=2**62))
        want = service.recommend(name, asked, 5, exclude_seen=True)
        assert ids(recs["export"]) == want.item_ids
        assert np.allclose([r.score for r in recs["export"]], want.scores, rtol=1e-5)
        assert all(r.title for r in recs["export"])
    with pytest.raises(DataError, match="label"):
        Look(world["export"], also={"led": world["export"]}, map_method="pca")
