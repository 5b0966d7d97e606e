"""The store: pragmas on every connection, summaries kept current, migrations, safe claims."""
from __future__ import annotations

import math
import random
import time
from concurrent.futures import ProcessPoolExecutor

import pytest
from sqlalchemy import text

from tuigen.store import HOST, Store
from tuigen.store.migrate import SCHEMA_HEAD, alembic_config


@pytest.fixture
def store(db_url) -> Store:
    """Every store test runs on SQLite and on a real PostgreSQL server (see conftest.db_url)."""
    s = Store(db_url)
    yield s
    s.close()


def test_every_connection_gets_the_pragmas(store):
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    conns = [store.engine.connect() for _ in range(3)]  # distinct pooled connections
    try:
        for c in conns:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
            assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        for c in conns:
            c.close()


def test_summary_matches_a_full_scan(store):
    run = store.create_run("classifier", {}, dataset="digits")
    rng = random.Random(0)
    points = [(k, step, rng.uniform(-5, 5), time.time()) for step in range(300) for k in ("loss", "acc")]
    for i in range(0, len(points), 97):  # uneven batches
        store.log_metrics(run.id, points[i:i + 97])
    summary = store.summary(run.id)
    for key in ("loss", "acc"):
        vals = [v for k, _, v, _ in points if k == key]
        s = summary[key]
        assert (s.min, s.max, s.count, s.last, s.last_step) == (min(vals), max(vals), 300, vals[-1], 299)
    assert store.get_run(run.id).step == 299


def test_nan_points_are_dropped_and_counted(store):
    run = store.create_run("classifier", {})
    dropped = store.log_metrics(run.id, [("loss", 1, 1.0, 0.0), ("loss", 2, math.nan, 0.0), ("loss", 3, math.inf, 0.0)])
    assert dropped == 1
    assert [p.value for p in store.metrics(run.id)] == [1.0, math.inf]


def test_truncate_rewinds_metrics_and_summary(store):
    run = store.create_run("classifier", {})
    store.log_metrics(run.id, [("loss", s, float(s), 0.0) for s in range(1, 101)])
    assert store.truncate_metrics(run.id, after_step=40) == 60
    s = store.summary(run.id)["loss"]
    assert (s.count, s.max, s.last_step) == (40, 40.0, 40)
    assert store.get_run(run.id).step == 40


def test_incremental_polling_by_id(store):
    run = store.create_run("classifier", {})
    store.log_metrics(run.id, [("loss", s, 1.0, 0.0) for s in range(10)])
    last = store.metrics(run.id)[-1].id
    store.log_metrics(run.id, [("loss", s, 2.0, 0.0) for s in range(10, 15)])
    assert [p.step for p in store.metrics(run.id, after_id=last)] == list(range(10, 15))


def test_conditional_transition_is_race_free(store):
    run = store.create_run("classifier", {})
    assert store.transition(run.id, "running", when=["queued", "starting"])
    assert not store.transition(run.id, "crashed", when=["queued"])
    assert store.get_run(run.id).status == "running"


def test_delete_run_removes_rows_and_files(store):
    from pathlib import Path

    run = store.create_run("classifier", {})
    (Path(run.run_dir) / "x.txt").write_text("x")
    store.log_metrics(run.id, [("loss", 1, 1.0, 0.0)])
    store.add_artifact(run.id, "image", "x.png")
    store.delete_run(run.id)
    assert store.list_runs() == [] and not Path(run.run_dir).exists()
    with store.read() as s:
        assert s.execute(text("SELECT count(*) FROM metrics")).scalar() == 0


def test_alembic_head_is_what_the_store_expects():
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD


def test_migrated_schema_matches_the_models(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tuigen.store.tables import Base

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def _open_store(url: str) -> str:
    s = Store(url)
    with s.read() as sess:
        version = sess.execute(text("SELECT version_num FROM alembic_version")).scalar()
    s.close()
    return version


def test_many_processes_opening_a_new_store_at_once(db_url):
    with ProcessPoolExecutor(6) as pool:  # db_url is an empty database: all six race to create it
        versions = list(pool.map(_open_store, [db_url] * 6))
    assert versions == [SCHEMA_HEAD] * 6
    with Store(db_url).read() as sess:
        assert sess.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def _claim(args) -> list[int]:
    url, slots = args
    s = Store(url)
    got = [r.id for r in s.claim_queued(HOST, slots)]  # runs are claimed on the host that launched them
    s.close()
    return got


def test_concurrent_claims_never_overfill_slots(store):
    ids = [store.create_run("classifier", {}).id for _ in range(10)]
    with ProcessPoolExecutor(5) as pool:
        claimed = [i for got in pool.map(_claim, [(store.url, 3)] * 5) for i in got]
    assert sorted(claimed) == ids[:3]  # exactly the 3 oldest, each once
    live = store.list_runs(status=["starting", "running"])
    assert len(live) == 3 and {r.host for r in live} == {HOST}


def test_sweep_limit_holds_back_its_runs(store):
    sweep = store.create_sweep("grid", "classifier", {"lr": [1, 2, 3]}, max_parallel=1)
    a = store.create_run("classifier", {}, sweep_id=sweep)
    store.create_run("classifier", {}, sweep_id=sweep)
    c = store.create_run("classifier", {})
    assert [r.id for r in store.claim_queued(HOST, 5)] == [a.id, c.id]


def test_url_resolution(tmp_path, monkeypatch):
    from tuigen.store import resolve_url, runs_root

    monkeypatch.delenv("TUIGEN_DB")
    assert resolve_url() == f"sqlite:///{tmp_path / 'runs.db'}"
    assert resolve_url("other.db") == f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("TUIGEN_DB", "postgresql://u:p@localhost/tuigen")
    assert resolve_url() == "postgresql+psycopg://u:p@localhost/tuigen"  # the driver we ship
    assert runs_root(resolve_url("x/y.db")) == tmp_path / "x" / "runs"


def test_an_old_store_is_upgraded_on_open_and_keeps_its_runs(db_url):
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from tuigen.store.engine import WRITE, make_engine

    url = db_url
    engine = make_engine(url)
    with engine.execution_options(**WRITE).begin() as conn:  # a runs.db from before scores existed
        command.upgrade(alembic_config(conn), "0001_initial")
        conn.exec_driver_sql("INSERT INTO runs (name, kind, project, dataset, status, config, tags, created_at, "
                             "host, executor, device, step, run_dir) VALUES ('old', 'classifier', '', 'digits', "
                             "'completed', '{}', '', 0, '', 'local', 'cpu', 5, '')")
    engine.dispose()
    assert "scores" not in inspect(create_engine(url)).get_table_names()
    store = Store(url)
    assert [r.name for r in store.list_runs()] == ["old"]
    store.add_score(store.list_runs()[0].id, "fid", 12.5, {"n": 2048})
    assert store.scores(metric="fid")[0].value == 12.5


def test_scores_refuse_non_finite_values_and_hash_provenance(store):
    run = store.create_run("ddpm", {})
    with pytest.raises(ValueError, match="non-finite"):
        store.add_score(run.id, "fid", math.nan, {"n": 10})
    a = store.add_score(run.id, "fid", 30.0, {"n": 2048, "ref": "mnist"}, step=100)
    b = store.add_score(run.id, "fid", 25.0, {"ref": "mnist", "n": 2048}, step=200)  # same provenance, any key order
    c = store.add_score(run.id, "fid", 5.0, {"n": 100, "ref": "mnist"}, step=200)
    keys = {s.id: s.provenance_key for s in store.scores(metric="fid")}
    assert keys[a] == keys[b] != keys[c]


def test_runs_asking_for_several_gpus_get_as_many_distinct_devices(store):
    devices = ["cuda:0", "cuda:1", "cuda:2"]
    two = store.create_run("ddpm", {}, resources={"gpus": 2})
    big = store.create_run("ddpm", {}, resources={"gpus": 2})  # must wait: one GPU left
    one = store.create_run("ddpm", {})
    claimed = store.claim_queued(HOST, 3, devices=devices)
    assert [(r.id, r.device) for r in claimed] == [(two.id, "cuda:0,1")]  # oldest first, not overtaken
    store.transition(two.id, "completed", when=["starting"])
    claimed = store.claim_queued(HOST, 3, devices=devices)
    assert [(r.id, r.device) for r in claimed] == [(big.id, "cuda:0,1"), (one.id, "cuda:2")]
    assert store.claim_queued(HOST, 3, devices=devices) == []  # all three GPUs busy


def test_cpu_runs_of_several_processes_take_as_many_slots(store):
    pair = store.create_run("classifier", {}, resources={"processes": 2})
    single = store.create_run("classifier", {})
    assert [r.id for r in store.claim_queued(HOST, 2)] == [pair.id]
    store.transition(pair.id, "completed", when=["starting"])
    assert [r.id for r in store.claim_queued(HOST, 2)] == [single.id]
