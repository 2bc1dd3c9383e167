"""Prometheus metrics: the queue's own figures from Redis, this host's from its processes.

Two sources, decided so that a scrape says the same whichever worker answers it:

* The line (waiting, active, capacity, mode), its running totals (joins, admissions, leaves,
  outcomes, dropped waiters, acknowledged bytes) and the wait and download-time histograms are
  kept by the queue scripts in Redis, in the same atomic step as the event (``stats`` hash),
  and read at scrape time with one read-only call. They are the same on every host; aggregate
  them with ``max`` across instances, not ``sum``.
* What one host does (bytes its connections delivered, refusals it answered, SSE streams per
  process, Redis script latency, the hub's event lag) is counted in each process with
  ``prometheus_client``; under gunicorn its multiprocess mode sums the workers of a host
  (``PROMETHEUS_MULTIPROC_DIR``, prepared by the master in ``gunicorn.conf.py``).
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .queue.constants import BUCKETS
from .queue.eta import newcomer_eta
from .queue.replies import Inspection
from .queue.states import DropReason, Outcome, QueueMode

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HOST = socket.gethostname()
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def prepare_multiprocess(base: str | None = None) -> str:
    """Give this master's workers one fresh directory for their metric files (call before any
    import of prometheus_client: it picks its storage at import)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        for stale in Path(path).glob("*.db"):
            stale.unlink()
    else:
        path = tempfile.mkdtemp(prefix="download-queue-metrics-", dir=base if base and os.path.isdir(base) else None)
        os.environ[MULTIPROC_ENV] = path
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


def process_exited(pid: int) -> None:
    """A worker died: its per-process gauges (open streams) stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def remove_multiprocess_dir() -> None:
    path = os.environ.get(MULTIPROC_ENV)
    if path and Path(path).name.startswith("download-queue-metrics-"):
        shutil.rmtree(path, ignore_errors=True)


class ProcessMetrics:
    """What this process counts; one instance per app, each with its own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # multiprocess mode has no *_created series: one shape everywhere
        self.registry = CollectorRegistry(auto_describe=True)
        self.sent_bytes = Counter(
            "download_queue_sent_bytes", "Bytes of files the clients acknowledged, by serving host.",
            ["host"], registry=self.registry,
        ).labels(HOST)
        self.refusals = Counter(
            "download_queue_refusals", "Requests this host refused, by error code.",
            ["reason"], registry=self.registry,
        )
        self.streams = Gauge(
            "download_queue_sse_streams", "Waiters' SSE streams open, per process.",
            ["host"], multiprocess_mode="liveall", registry=self.registry,
        ).labels(HOST)
        self.script_seconds = Histogram(
            "download_queue_redis_script_duration_seconds", "Time of one queue script call, by script.",
            ["script"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.event_lag = Histogram(
            "download_queue_hub_event_lag_seconds",
            "From a queue event's making in Redis to its arrival in this process's hub.",
            registry=self.registry, buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        )

    def script_called(self, script: str, seconds: float) -> None:
        self.script_seconds.labels(script).observe(seconds)

    def exposition(self, inspection: Inspection) -> bytes:
        """The text format of every metric: this host's processes, then the queue's."""
        from prometheus_client import generate_latest

        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client.multiprocess import MultiProcessCollector

            local: Any = MultiProcessCollector(None)
        else:
            local = self.registry
        return generate_latest(_Scrape(local, QueueCollector(inspection)))  # type: ignore[arg-type]


class _Scrape:
    """Several collectors read as one registry for a single scrape."""

    def __init__(self, *sources: Any) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Any]:
        for source in self.sources:
            yield from source.collect()


class QueueCollector:
    """The queue-wide figures of one ``inspect`` reply, as metric families."""

    def __init__(self, inspection: Inspection) -> None:
        self.inspection = inspection

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snap, stats = self.inspection.snap, self.inspection.stats
        for name, text, value in (
            ("waiting", "Waiters in line and present (a stream, a poll or a join within WAIT_GRACE).", snap.waiting),
            ("away", "Waiters away: keeping their places for AWAY_GRACE, not admitted meanwhile.", snap.away),
            ("active", "Admitted tokens holding a download slot.", snap.active),
            ("capacity", "Download slots (the queue's setting).", snap.capacity),
            ("admission_rate", "Admissions per second over the recent window.", snap.rate),
        ):
            yield GaugeMetricFamily(f"download_queue_{name}", text, value=value)
        mode = GaugeMetricFamily("download_queue_mode", "1 for the line's current mode.", labels=["mode"])
        for name in QueueMode:
            mode.add_metric([name], 1 if snap.mode == name else 0)
        yield mode
        if snap.settings is not None and snap.settings.egress_budget:
            for name, text, value in (
                ("egress_budget_bytes", "The deployment's egress budget, bytes/s.", snap.settings.egress_budget),
                ("egress_bytes", "Bytes/s the running downloads delivered over the last seconds, all hosts.",
                 snap.egress or 0),
                ("admission_limit", "Downloads the egress budget lets run now (at most the capacity).",
                 snap.limit if snap.limit is not None else snap.capacity),
            ):
                yield GaugeMetricFamily(f"download_queue_{name}", text, value=value)
        eta = newcomer_eta(snap)
        if eta is not None:
            yield GaugeMetricFamily("download_queue_newcomer_eta_seconds",
                                    "Estimated wait of someone joining now.", value=eta)
        for name, text, field in (
            ("joins", "Places made in line.", "joins"),
            ("admissions", "Waiters admitted to a download slot.", "admissions"),
            ("acked_bytes", "Bytes of files the clients acknowledged, all hosts.", "bytes"),
        ):
            yield CounterMetricFamily(f"download_queue_{name}", text, value=stats.get(field, 0))
        yield CounterMetricFamily(
            "download_queue_leaves", "Tokens that left: waiters giving up their place and holders their slot.",
            value=stats.get("dropped_left", 0) + stats.get("outcome_left", 0),
        )
        outcomes = CounterMetricFamily("download_queue_outcomes", "Admitted tokens that finished, by outcome.",
                                       labels=["outcome"])
        for outcome in Outcome:
            outcomes.add_metric([outcome], stats.get(f"outcome_{outcome}", 0))
        yield outcomes
        dropped = CounterMetricFamily("download_queue_waiters_dropped",
                                      "Waiters that lost their place without admission, by reason.",
                                      labels=["reason"])
        for reason in DropReason:
            dropped.add_metric([reason], stats.get(f"dropped_{reason}", 0))
        yield dropped
        refused = CounterMetricFamily("download_queue_joins_refused",
                                      "Joins the queue refused, by reason (every host).", labels=["reason"])
        refused.add_metric(["too_many_places"], stats.get("refused_places", 0))
        yield refused
        for name, text, field in (
            ("waiters_away", "Waiters whose presence stopped (they keep their place, not admitted).", "went_away"),
            ("waiters_returned", "Away waiters that came back to their place.", "came_back"),
        ):
            yield CounterMetricFamily(f"download_queue_{name}", text, value=stats.get(field, 0))
        yield GaugeMetricFamily("download_queue_place_holders", "Clients holding a place (waiting or admitted).",
                                value=self.inspection.clients)
        yield _histogram(stats, "wait", "download_queue_wait_seconds", "Time from joining to admission.")
        yield _histogram(stats, "download", "download_queue_download_duration_seconds",
                         "Time from a download's first connection to its end.")


def histogram_bounds() -> list[str]:
    """The ``le`` labels of the histograms kept in Redis: the scripts' ``BUCKETS`` (their
    ``<name>_b<i>`` fields, i from 1, and one past the last for +Inf)."""
    return [str(float(bound)) for bound in BUCKETS] + ["+Inf"]


def _histogram(stats: dict[str, int], name: str, metric: str, text: str) -> Any:
    from prometheus_client.core import HistogramMetricFamily

    buckets, total = [], 0
    for n, le in enumerate(histogram_bounds()[:-1], start=1):
        total += stats.get(f"{name}_b{n}", 0)
        buckets.append((le, total))
    buckets.append(("+Inf", stats.get(f"{name}_n", 0)))
    return HistogramMetricFamily(metric, text, buckets=buckets, sum_value=stats.get(f"{name}_sum", 0) / 1000)
