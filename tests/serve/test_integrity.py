"""Nothing broken on disk can serve: every corruption class is refused with a message naming the file, cache
faults are rebuilt, and a broken export is never replaced by the raw run beside it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from ledrec.bench import corrupt
from ledrec.export.mips import ServingModel
from ledrec.io import ArtifactError
from ledrec.serve.loading import load_retriever, locate
from ledrec.serve.retriever import RetrieverConfig
from tests.serve.conftest import recall_vs_exact, toy_model

ANN = RetrieverConfig(exact_below=0, index_params={"M": 8})


@pytest.fixture()
def export(tmp_path):
    path = tmp_path / "export"
    toy_model().save(path)
    load_retriever(path, ANN)  # builds and caches the graphs
    return path


@pytest.mark.parametrize("name", list(corrupt.REFUSED))
def test_every_refused_corruption_is_refused_naming_the_file(export, name):
    corrupt.REFUSED[name](export)
    with pytest.raises(ArtifactError) as err:
        load_retriever(export, ANN)
    message = str(err.value)
    assert str(export) in message and "\n" not in message


@pytest.mark.parametrize("name", list(corrupt.REBUILT))
def test_cache_faults_are_rebuilt_and_answer_right(export, name):
    corrupt.REBUILT[name](export)
    retriever = load_retriever(export, ANN)
    assert all(e != "hit" for e in retriever.cache_events.values())
    assert recall_vs_exact(retriever, "fr") > 0.9 and recall_vs_exact(retriever, "de") > 0.9


def test_a_broken_export_in_a_run_directory_is_an_error_not_a_fallback_to_the_raw_run(tmp_path):
    """The old loader served the raw run (one catalogue "") when RUN/serving had no or a foreign manifest."""
    from ledrec.cli import main

    run = tmp_path / "run"
    argv = ["run", "--data", "synthetic:n_users=200,n_items=80,n_partitions=2", "--protocol", "strong"]
    assert main([*argv, "--model", "svd", "--dim", "4", "--out", str(run)]) == 0
    assert main(["export", str(run), "--data", "synthetic:n_users=200,n_items=80,n_partitions=2"]) == 0
    assert locate(run)[0] == "export"
    shutil.copy(run / "model" / "manifest.json", run / "serving" / "manifest.json")  # a manifest of another kind
    with pytest.raises(ArtifactError, match="serving"):
        load_retriever(run)
    (run / "serving" / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="serving"):
        load_retriever(run)
    shutil.rmtree(run / "serving")  # no export at all: the raw run is served, one catalogue
    assert list(load_retriever(run).partitions) == [""]


def test_loading_checks_what_the_manifest_cannot(tmp_path):
    """Shapes that agree with the manifest but not with each other (rewritten consistently)."""
    model = toy_model()
    with pytest.raises(ArtifactError, match="rows for"):
        ServingModel(
            item_ids=model.item_ids[:-1],
            encoder_vectors=model.item_vectors,
            item_vectors=model.item_vectors,
            item_bias=model.item_bias[:-1],
            query_map=model.query_map,
        ).validate()
    with pytest.raises(ArtifactError, match="not finite"):
        vectors = model.item_vectors.copy()
        vectors[3, 1] = np.inf
        ServingModel(model.item_ids, vectors, vectors, model.item_bias, model.query_map).validate()


def test_a_saved_model_keeps_its_version_and_any_change_makes_a_new_one(tmp_path):
    from dataclasses import replace

    model = toy_model()
    model.save(tmp_path / "a")
    loaded = ServingModel.load(tmp_path / "a")
    assert loaded.version == model.version
    changes = [
        replace(model, item_bias=model.item_bias + 1),
        replace(model, item_ids=np.array([f"j{i}" for i in range(len(model.item_ids))])),
        replace(model, partitions={"fr": np.arange(300)}),
        replace(model, reduce="sqrt"),
        replace(model, query_map=2 * model.query_map),
    ]
    assert len({model.version, *(c.version for c in changes)}) == 1 + len(changes)


def test_serving_never_imports_torch_or_the_training_stack(tmp_path):
    """`import ledrec.serve.server` took 8.5 s and 415 MB because serving imported torch."""
    toy_model().save(tmp_path / "export")
    code = (
        "import sys\n"
        "from ledrec.cli import main\n"
        f"assert main(['serve', {str(tmp_path / 'export')!r}, '--check']) == 0\n"
        "import ledrec.serve.server, ledrec.serve.loading\n"
        "banned = [m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn') or m.startswith(('ledrec.models',"
        " 'ledrec.train', 'ledrec.simulate', 'ledrec.pretrain'))]\n"
        "assert not banned, banned\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
