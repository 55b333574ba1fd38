"""``ledrec fold-in``: the items that appeared since the daily run join the served models as a new version."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ledrec.export import publish
from ledrec.export.mips import ServingModel
from ledrec.pipeline.daily import run_pipeline
from ledrec.serve import ledrec_pb2
from tests.conftest import ledrec
from tests.pipeline.conftest import settings, write_days
from tests.serve.conftest import Running


def test_new_items_of_the_day_are_served_after_a_fold_in(tmp_path, capsys, front):
    events, out = tmp_path / "events", tmp_path / "published"
    write_days(events, np.arange(15))
    first = run_pipeline(settings(events, out), progress=False)
    # the next day: a tenth of its events are on items launched today (new ids)
    write_days(events, [15])
    day = pq.read_table(events / "day=015.parquet")
    items = np.array(day.column("item").to_pylist())
    launched = np.isin(items, np.unique(items)[::10])
    items[launched] = np.char.add("new-", items[launched])
    pq.write_table(day.set_column(1, "item", pa.array(items)), events / "day=015.parquet")
    server = Running(out, front)
    try:
        report = ledrec(capsys, "fold-in", str(out), "--events", str(events), "--days", "1", "--quiet")
        for name, part in report["catalogues"].items():
            assert part["decision"] == "published" and part["new_items"] > 0, part
            assert part["from"] == first["catalogues"][name]["version"] == publish.releases(out / name)[-1]["from"]
            model = ServingModel.load(out / name / "current")
            new = [i for i in model.item_ids.tolist() if i.startswith("new-")]
            assert len(new) == part["new_items"] and set(new) <= set(items[launched].tolist())
            # the running server follows: a history of a new item is no longer unknown
            request = ledrec_pb2.RecommendRequest(partition=name, item_ids=new[:1], k=5)
            for _ in range(200):  # (the watch polls every 0.1 s)
                response = server.stub.Recommend(request, timeout=5)
                if response.unknown_items == 0:
                    break
                time.sleep(0.05)
            assert response.unknown_items == 0 and not response.cold_start, response
        # nothing new since: a second fold-in changes nothing
        again = ledrec(capsys, "fold-in", str(out), "--events", str(events), "--days", "1", "--quiet")
        assert all(p["decision"] == "unchanged" for p in again["catalogues"].values())
    finally:
        server.close()
