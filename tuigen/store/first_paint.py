"""A read-only look at a SQLite store through the standard library's sqlite3, for the TUI's
first frame: the newest runs with their summaries and scores, before SQLAlchemy is imported
(about half of a cold start). It answers the few Store queries the runs table's first poll
makes, with the same rows; the full Store attaches right after.

Anything unusual (not SQLite, no file yet, a schema older than the code) gives None, and the
first frame waits for the full store, which migrates it.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

PREFIX = "sqlite:///"


class FirstPaintReader:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def _rows(self, sql: str, params: Sequence = ()) -> list[SimpleNamespace]:
        cur = self.conn.execute(sql, tuple(params))
        names = [d[0] for d in cur.description]
        return [SimpleNamespace(**dict(zip(names, row))) for row in cur]

    def run_rows(self, *, limit: int, newest_first: bool = True, **_) -> list[SimpleNamespace]:
        return self._rows(f"SELECT * FROM runs ORDER BY id {'DESC' if newest_first else ''} LIMIT ?", [limit])

    def summary_rows(self, run_ids: Sequence[int]) -> dict[int, dict]:
        out: dict[int, dict] = {}
        for row in self._rows(f"SELECT * FROM metric_summary WHERE run_id IN ({_marks(run_ids)})", run_ids):
            out.setdefault(row.run_id, {})[row.key] = row
        return out

    def score_candidates(self, run_ids: Sequence[int], keys: Sequence[str]) -> list[tuple]:
        """As Store.score_candidates: stored scores and logged summaries of `keys`, one query."""
        if not run_ids or not keys:
            return []
        ids, ks = _marks(run_ids), _marks(keys)
        sql = (f"SELECT s.run_id, r.kind, 1, s.metric, s.value, s.step, s.id FROM scores s JOIN runs r "
               f"ON r.id = s.run_id WHERE s.run_id IN ({ids}) AND s.metric IN ({ks}) UNION ALL "
               f"SELECT m.run_id, r.kind, 0, m.key, m.last, m.last_step, 0 FROM metric_summary m JOIN runs r "
               f"ON r.id = m.run_id WHERE m.run_id IN ({ids}) AND m.key IN ({ks})")
        return self.conn.execute(sql, (*run_ids, *keys, *run_ids, *keys)).fetchall()

    def studies_of(self, run_ids: Sequence[int]) -> dict[int, str]:
        sql = (f"SELECT DISTINCT st.id, st.name FROM studies st JOIN runs r ON r.study_id = st.id "
               f"WHERE r.id IN ({_marks(run_ids)})")
        return dict(self.conn.execute(sql, tuple(run_ids)).fetchall())

    def close(self) -> None:
        self.conn.close()


def _marks(values: Sequence) -> str:
    return ", ".join("?" * len(values)) or "NULL"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite store URL or bare path (as `--db` takes them), else None."""
    if "://" not in url:
        return Path(url).expanduser() if url and not url.startswith(":memory:") else None
    return Path(url[len(PREFIX):].split("?", 1)[0]) if url.startswith(PREFIX) else None


def open_first_paint(url: str) -> FirstPaintReader | None:
    """A reader of the SQLite file behind `url`, opened read-only, or None (see the module)."""
    path = sqlite_path(url)
    if path is None:
        return None
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 1000")
        conn.execute("SELECT id, uuid, study_id, trial_number FROM runs LIMIT 0")  # a current schema
    except sqlite3.Error:
        return None
    return FirstPaintReader(conn)
