"""Issue 21: the download history stays right when its journal entries are written out of order
(a consumer that died with entries read and not written: another claims them later)."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import sqlalchemy as sa

from app.extensions import db
from app.history.models import Download
from app.history.recorder import GROUP, HistoryRecorder
from testbed.servers import wait_until

from .helpers.queue import FAR, advance, journal


@contextlib.contextmanager
def counted_statements() -> Iterator[list[str]]:
    """The first word of each SQL statement the database is sent while the block runs."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement.split()[0].upper())

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def test_a_dead_consumers_older_outcome_does_not_replace_a_newer_one(app, make_engine, make_file):
    file_id, _ = make_file("h.bin", 1000)
    engine = make_engine(capacity=1, stall_timeout=2)
    stream = engine.keys.journal
    engine.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    # a download stalls: its admission, start and end are read by a consumer that then dies
    engine.join("a", file_id, 1000, FAR, "127.0.0.1")
    engine.start("a", "c1", 1000)
    engine.progress("a", "c1", 0, 300, 300, range_end=1000)
    advance(engine, 3)
    engine.reap()
    dead_read = engine.client.xreadgroup(GROUP, "dead", {stream: ">"}, count=100)
    assert [f[b"outcome"] for _, f in dead_read[0][1] if b"outcome" in f] == [b"stalled"]
    # the same token joins again, is admitted and completes
    advance(engine, 1)
    engine.join("a", file_id, 1000, FAR, "127.0.0.1")
    engine.start("a", "c2", 1000)
    assert engine.progress("a", "c2", 0, 1000, 1000, closing=True, range_end=1000).state == "complete"
    assert [e.get("outcome") for e in journal(engine) if e["event"] == "finished"] == ["stalled", "completed"]

    recorder = HistoryRecorder(engine.client, stream, app.app_context, block_ms=10, claim_idle_ms=60_000)
    assert recorder.drain_once() == 3  # the newer three first: the dead consumer's are not idle enough
    recorder.claim_idle_ms = 0
    assert recorder.drain_once() == 3  # then its three, claimed
    with app.app_context():
        row = db.session.scalar(db.select(Download).filter_by(token_id="a"))
        assert row.outcome == "completed" and (row.bytes_sent, row.bytes_resent) == (1000, 0)
        assert row.started_at <= row.finished_at and row.admitted_at <= row.started_at


def test_a_file_removed_mid_download_does_not_stop_the_history(app, make_engine, make_file):
    """The journal names a file the catalog no longer has: its row is kept without the file, and
    what follows it in the journal is still written."""
    from app.catalog.service import remove_file

    gone, _ = make_file("gone.bin", 1000)
    kept, _ = make_file("kept.bin", 1000)
    engine = make_engine(capacity=2)
    stream = engine.keys.journal
    engine.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    for token_id, file_id in (("a", gone), ("b", kept)):
        engine.join(token_id, file_id, 1000, FAR, "127.0.0.1")
        engine.start(token_id, "c1", 1000)
        assert engine.progress(token_id, "c1", 0, 1000, 1000, closing=True, range_end=1000).state == "complete"
    with app.app_context():
        remove_file(gone)
    recorder = HistoryRecorder(engine.client, stream, app.app_context, block_ms=10)
    assert recorder.drain_once() == 6
    with app.app_context():
        rows = {r.token_id: r for r in db.session.scalars(db.select(Download))}
        assert (rows["a"].file_id, rows["a"].outcome) == (None, "completed")
        assert (rows["b"].file_id, rows["b"].outcome) == (kept, "completed")


def test_a_batch_of_entries_is_written_in_one_statement(app, make_engine, make_file):
    """A busy line's journal (100 downloads admitted and ended, two entries each) goes to the table
    in one upsert per batch, not a round of queries per entry; every row is right."""
    file_id, _ = make_file("batch.bin", 1000)
    engine = make_engine(capacity=100)
    stream = engine.keys.journal
    engine.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    for n in range(100):
        engine.join(f"t{n}", file_id, 1000, FAR, "127.0.0.1")
        engine.leave(f"t{n}")
    recorder = HistoryRecorder(engine.client, stream, app.app_context, block_ms=10)
    with app.app_context():
        with counted_statements() as statements:
            assert recorder.drain_once() == 200
        assert statements.count("INSERT") == 1 and "UPDATE" not in statements
        rows = {r.token_id: r for r in db.session.scalars(db.select(Download))}
        assert len(rows) == 100
        assert {(r.file_id, r.outcome, r.bytes_sent) for r in rows.values()} == {(file_id, "left", 0)}
        assert all(r.admitted_at <= r.finished_at for r in rows.values())


def test_what_follows_an_entry_within_the_gather_goes_in_its_batch(app, make_engine, make_file):
    """The first entry after a quiet spell (a hand-off's, appended as its waiter is woken) is not
    written at once: the entries that follow it while the recorder gathers go in the same
    statement."""
    file_id, _ = make_file("gather.bin", 1000)
    engine = make_engine(capacity=1)
    stream = engine.keys.journal
    engine.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    engine.join("first", file_id, 1000, FAR, "127.0.0.1")  # admitted: one entry
    recorder = HistoryRecorder(engine.client, stream, app.app_context, block_ms=10, gather_s=30)

    def follow() -> None:  # once the recorder holds the first entry, its hand-off goes on
        wait_until(lambda: engine.client.xpending(stream, GROUP)["pending"] == 1, timeout=30,
                   message="the recorder read the first entry")
        engine.join("second", file_id, 1000, FAR, "127.0.0.1")
        engine.leave("first")  # finished, and "second" admitted: two more
        recorder.close()  # the gather ends now: what is there is taken

    follower = threading.Thread(target=follow)
    follower.start()
    with app.app_context():
        with counted_statements() as statements:
            assert recorder.drain_once() == 3
        follower.join()
        assert statements.count("INSERT") == 1
        rows = {r.token_id: r for r in db.session.scalars(db.select(Download))}
        assert rows["first"].outcome == "left" and rows["second"].admitted_at is not None
