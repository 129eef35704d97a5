"""Intraday quality monitoring: fills scored as they land, per-minute buckets per venue and algo
standardized against the morning's baselines, and a one-sided CUSUM per subject and metric that
raises at most one alert per session (docs/MONITORING.md, "Intraday monitoring").

    base = baselines(series, day, settings)           # the daily series of earlier dates
    mon = IntradayMonitor(day, base, settings)
    mon.add_orders(frame); mon.add_children(frame)    # as micro-batches land
    mon.add_quotes(frame); new_alerts = mon.add_executions(frame)

The fills are scored by `quality.stream.score_fill` (the batch path's formulas) when their
bucket closes: by then the quotes of the next seconds have landed and the short markout
horizons are settled. A bucket closes once the data time of both the executions and the quotes
has passed its end by `settle_s`, so the state depends only on the rows landed, in the order
they landed: replaying the same files gives the same buckets, statistics and alert ids
(`intraday_state` restarts that way).

The statistic of subject s, metric m and bucket b (sign +1 where higher is worse):

    z_b = sign (x_b - mu) / sqrt(u^2 / n_eff_b + baseline_var)

x_b the bucket's weighted mean (shares for markouts, one per fill for latency, as the daily
series), n_eff_b = (sum w)^2 / sum over the bucket's orders of their weight squared (orders are
the clusters, as in the daily series); mu the mean of the subject's daily values over its last
`baseline_days` dates before the session, baseline_var = s^2 / n + max(0, s^2 - mean se^2) (the
baseline's own error and the day-to-day variation, as the daily detectors); u the dispersion of
one unit of n_eff: the larger of the daily se sqrt(n_eff) and the session's own robust figure
(`IntradayMonitor.unit_sd`), inflated by `dispersion`.

CUSUM: S_b = max(0, S_{b-1} + clip(z_b) - k), alarm at S_b > h (`detectors.cusum_path`'s recursion,
with k and h from `detectors.cusum_parameters`). ARL0 is set so that the desk as a whole raises
about one false intraday alert per `desk_false_alarm_sessions` sessions: each of the N monitored
series gets ARL0 = sessions x N x scored buckets per session (a Bonferroni split).

Pure: Polars, numpy, the stream scorer and the detectors; no Dagster, no DuckDB.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.monitor.alerts import AlertSettings, severity
from eqs_pipeline.monitor.delivery import Alert
from eqs_pipeline.monitor.detectors import cusum_parameters
from eqs_pipeline.monitor.settings import MonitorSettings
from eqs_pipeline.quality.stream import (
    EPOCH,
    QuoteBook,
    TradeExecutedEvent,
    epoch_us,
    score_fill,
)

SERIES_TABLE = "monitor.metric_series"
LATENCY = "latency_ms"
BASELINE_COLUMNS = ("dimension", "subject", "metric", "mu", "baseline_var", "sigma2", "days")


@dataclass(frozen=True)
class IntradaySettings:
    """How the intraday monitor buckets, standardizes and alarms.

    bucket_s: the bucket length in seconds of data time (60: a shift shows within minutes
        while a venue's bucket holds tens of fills at 100 fills a minute on the desk).
    warmup_s: buckets that start before this many seconds after the open are measured (for
        the dispersion) but not scored: spreads and volatility are highest after the open and
        the daily baseline is the day's average (45 minutes: the simulated spreads are within
        4% of their midday level by then).
    settle_s: a bucket closes once the executions' and the quotes' data time is this far past
        its end (10 s: the 5-second markouts have a later quote to settle on).
    open_time / timezone: the session's open on its market clock.
    session_s: the session's length (6.5 hours).
    metrics: the fill metrics watched (`monitor.series` names; latency over IOC fills). Not
        effective spread or price improvement: a minute's figure follows the time of day and
        the one or two orders trading in it (docs/MONITORING.md).
    dimensions: `venue` and `algo` (and `desk`, whose one subject is `all`).
    baseline_days / min_baseline_days: the trailing daily dates the baseline averages, and
        the fewest with which a subject is watched at all.
    min_fills: a bucket with fewer of the subject's fills is not scored (its mean is noise).
    dispersion: the variance inflation of the session's median-based dispersion (minute means
        have heavier tails than a normal: on the simulated desk the standardized buckets'
        standard deviation is 1.0-1.5 with 1, so 2, in variance, covers it).
    min_pool: the buckets a series needs before it is scored (its dispersion's sample).
    shift_sd: the shift, in standard deviations of a bucket, that the CUSUM detects fastest
        (k = shift_sd / 2).
    desk_false_alarm_sessions: about one false intraday alert per this many sessions for the
        whole desk, split evenly over the monitored series.
    z_clip: each bucket's z enters the CUSUM clipped to [-z_clip, z_clip] (a robust CUSUM):
        one minute dominated by a large order in a wide-spread symbol can sit 8-10 standard
        deviations out on a stable desk, and must not alarm alone; a real shift persists, and
        at 3 a shift of 3 sd or more alarms in its third bucket (k = 1, h about 5.1).
    """

    bucket_s: int = 60
    warmup_s: int = 2700
    settle_s: float = 10.0
    open_time: time = time(9, 30)
    timezone: str = "America/New_York"
    session_s: int = 23_400
    metrics: tuple[str, ...] = ("markout_5s_bps", LATENCY)
    dimensions: tuple[str, ...] = ("venue", "algo")
    baseline_days: int = 20
    min_baseline_days: int = 5
    min_fills: int = 3
    dispersion: float = 2.0
    shift_sd: float = 2.0
    desk_false_alarm_sessions: float = 20.0
    z_clip: float = 3.0
    min_pool: int = 20

    def __post_init__(self) -> None:
        if self.bucket_s < 1 or self.session_s < self.bucket_s:
            raise ValueError("need 1 <= bucket_s <= session_s")
        if not 0 <= self.warmup_s < self.session_s:
            raise ValueError("need 0 <= warmup_s < session_s")
        if self.settle_s < 0:
            raise ValueError(f"settle_s must be >= 0, not {self.settle_s}")
        if not 2 <= self.min_baseline_days <= self.baseline_days:
            raise ValueError("need 2 <= min_baseline_days <= baseline_days")
        if self.min_fills < 1 or self.dispersion < 1 or self.shift_sd <= 0:
            raise ValueError("need min_fills >= 1, dispersion >= 1 and shift_sd > 0")
        if self.desk_false_alarm_sessions <= 0:
            raise ValueError("desk_false_alarm_sessions must be > 0")
        if self.z_clip <= self.shift_sd / 2:
            raise ValueError("z_clip must exceed the CUSUM's reference value shift_sd / 2")
        unknown = [d for d in self.dimensions if d not in ("desk", "venue", "algo")]
        if unknown:
            raise ValueError(f"intraday dimensions are desk, venue and algo, not {unknown}")

    @property
    def scored_buckets(self) -> int:
        """Buckets scored per session (after the warm-up)."""
        return math.ceil((self.session_s - self.warmup_s) / self.bucket_s)

    def horizons(self) -> tuple[int, ...]:
        """The markout horizons the metrics need (`markout_5s_bps` -> 5)."""
        return tuple(
            int(m.removeprefix("markout_").removesuffix("s_bps"))
            for m in self.metrics
            if m.startswith("markout_")
        )

    def open_at(self, day: date) -> datetime:
        """The session's open, in UTC."""
        local = datetime.combine(day, self.open_time, tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(UTC)


def intraday_alert_id(dimension: str, subject: str, metric: str, trade_date: date) -> str:
    """`alr-` + 16 hex digits of SHA-256 over `intraday`, the keys and the session: the same on
    every replay, and never the id of a daily alert of the same subject and date."""
    text = "\x1f".join(("intraday", dimension, subject, metric, trade_date.isoformat()))
    return "alr-" + hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Baselines


def baselines(
    series: pl.DataFrame, trade_date: date, settings: IntradaySettings | None = None
) -> pl.DataFrame:
    """The morning's baseline of every watched (dimension, subject, metric) from the daily
    series (`monitor.metric_series` rows of any dates; only those before `trade_date` count):
    mu, baseline_var, sigma2 (the mean of se^2 n_eff: the daily dispersion of one unit of
    n_eff) and days (see the module docstring). A subject with fewer than `min_baseline_days`
    dates, or no dispersion at all (a metric that never varies, such as a midpoint pool's
    effective spread), is left out."""
    settings = settings or IntradaySettings()
    keys = ["dimension", "subject", "metric"]
    prior = series.filter(
        (pl.col("trade_date") < trade_date)
        & pl.col("dimension").is_in(list(settings.dimensions))
        & pl.col("metric").is_in(list(settings.metrics))
        & pl.col("value").is_finite()
        & pl.col("se").is_finite()
        & (pl.col("n_eff") > 0)
    )
    recent = prior.filter(
        pl.col("trade_date").rank("ordinal", descending=True).over(keys) <= settings.baseline_days
    )
    out = (
        recent.group_by(keys)
        .agg(
            mu=pl.col("value").mean(),
            s2=pl.col("value").var(),
            se2=(pl.col("se") ** 2).mean(),
            sigma2=(pl.col("se") ** 2 * pl.col("n_eff")).mean(),
            days=pl.len().cast(pl.Int64),
        )
        .filter((pl.col("days") >= settings.min_baseline_days) & (pl.col("sigma2") > 0))
        .with_columns(
            baseline_var=pl.col("s2") / pl.col("days")
            + (pl.col("s2") - pl.col("se2")).clip(lower_bound=0.0)
        )
    )
    return out.select(BASELINE_COLUMNS).sort(keys)


def read_baselines(
    lake_root: str | Path, trade_date: date, settings: IntradaySettings | None = None
) -> pl.DataFrame:
    """`baselines` from the lake's daily partitions of `monitor.metric_series` before
    `trade_date` (the last `baseline_days` of them). The Parquet files only: the monitor never
    opens the DuckDB warehouse, whose one writer is the daily pipeline."""
    from eqs_pipeline.storage import lake

    settings = settings or IntradaySettings()
    dates = [d for d in lake.partition_dates(lake_root, SERIES_TABLE) if d < trade_date]
    dates = dates[-settings.baseline_days :]
    if not dates:
        raise FileNotFoundError(
            f"no daily partition of {SERIES_TABLE} before {trade_date} under {lake_root}: "
            "run the daily pipeline first (the intraday baselines come from it)"
        )
    frames = [pl.read_parquet(lake.partition_path(lake_root, SERIES_TABLE, d)) for d in dates]
    return baselines(pl.concat(frames, how="vertical_relaxed"), trade_date, settings)


# ---------------------------------------------------------------------------------------------
# The monitor


@dataclass
class _Series:
    """One watched (dimension, subject, metric): its baseline and CUSUM state."""

    key: tuple[str, str, str]
    sign: float
    mu: float
    baseline_var: float
    sigma2: float
    stat: float = 0.0
    run_w: float = 0.0  # the current run's weights, weighted sum and sum of squared weights
    run_wx: float = 0.0
    run_w2: float = 0.0
    run_start: int | None = None  # first bucket of the current run
    z: list[tuple[int, float]] = field(default_factory=list)  # (bucket, z) of scored buckets
    obs: list[tuple[float, float]] = field(default_factory=list)  # (x, n_eff) of every bucket
    alerted: bool = False


@dataclass
class _Acc:
    """A bucket's sums for one series: weights and weighted values per order (the cluster)."""

    w: float = 0.0
    wx: float = 0.0
    n: int = 0
    by_order: dict[str, float] = field(default_factory=dict)

    @property
    def w2(self) -> float:
        """Sum over the bucket's orders of their squared weight: n_eff = w^2 / w2 counts
        orders, as the daily series' n_eff does."""
        return sum(v * v for v in self.by_order.values())


@dataclass(frozen=True)
class Counts:
    """What the monitor has seen: fills landed, scored (their bucket closed), late (their
    bucket had closed), waiting for their order, quotes refused (crossed), buckets closed."""

    fills: int
    scored: int
    late: int
    waiting: int
    refused_quotes: int
    buckets: int
    data_time: datetime | None


class IntradayMonitor:
    """The intraday state of one session; feed it micro-batches in landing order."""

    def __init__(
        self,
        trade_date: date,
        baseline: pl.DataFrame,
        settings: IntradaySettings | None = None,
        monitor_settings: MonitorSettings | None = None,
        alert_settings: AlertSettings | None = None,
        clock=None,
    ) -> None:
        self.trade_date = trade_date
        self.settings = settings = settings or IntradaySettings()
        monitor_settings = monitor_settings or MonitorSettings()
        self.alert_settings = alert_settings or AlertSettings()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.quality = QualitySettings(horizons_s=settings.horizons() or (5,))
        self.book = QuoteBook(trade_date)
        self.open = settings.open_at(trade_date)
        self._open_us = epoch_us(self.open)
        self._bucket_us = settings.bucket_s * 1_000_000
        self.series: dict[tuple[str, str, str], _Series] = {}
        for row in baseline.iter_rows(named=True):
            key = (row["dimension"], row["subject"], row["metric"])
            lower = monitor_settings.direction(row["metric"]) == "lower_is_worse"
            self.series[key] = _Series(
                key, -1.0 if lower else 1.0, row["mu"], row["baseline_var"], row["sigma2"]
            )
        n = max(len(self.series), 1)
        self.arl0 = settings.desk_false_alarm_sessions * n * settings.scored_buckets
        self.k, self.h = cusum_parameters(self.arl0, settings.shift_sd)
        self.orders: dict[str, tuple[str, str]] = {}  # order_id -> (side, algo)
        self.children: dict[str, tuple[int, str]] = {}  # child_id -> (sent us, tif)
        self._waiting: list[dict] = []  # fills whose order has not landed yet
        self._open_buckets: dict[int, list[TradeExecutedEvent]] = {}
        self._closed_below = -(10**9)  # every bucket below this index is closed
        self._exec_max: int | None = None
        self._quote_max: int | None = None
        self._fills = self._scored = self._late = self._buckets = 0
        self.alerts: list[Alert] = []

    # -- feeding ------------------------------------------------------------------------------

    def add_orders(self, frame: pl.DataFrame) -> list[Alert]:
        """Orders (order_id, side, algo), by arrival; fills waiting for them are queued."""
        for oid, side, algo in frame.select("order_id", "side", "algo").iter_rows():
            if oid is not None and side is not None:
                self.orders[oid] = (side, algo)
        if self._waiting:
            waiting, self._waiting = self._waiting, []
            self._queue(waiting)
        return []

    def add_children(self, frame: pl.DataFrame) -> list[Alert]:
        """Child orders (child_id, sent_ts, tif): the IOC fills' latency."""
        for cid, sent, tif in frame.select("child_id", "sent_ts", "tif").iter_rows():
            if cid is not None and sent is not None:
                self.children[cid] = (epoch_us(sent), tif)
        return []

    def add_quotes(self, frame: pl.DataFrame) -> list[Alert]:
        """NBBO quotes (symbol, ts, bid_px, ask_px, bid_sz, ask_sz); may close buckets."""
        cols = frame.select("symbol", "ts", "bid_px", "ask_px", "bid_sz", "ask_sz")
        for sym, ts, bid, ask, bsz, asz in cols.iter_rows():
            if sym is None or ts is None or bid is None or ask is None:
                continue
            self.book.on_quote(sym, ts, bid, ask, bsz, asz)
        if cols.height:
            top = cols["ts"].max()
            if top is not None:
                self._quote_max = max(self._quote_max or epoch_us(top), epoch_us(top))
        return self._advance()

    def add_executions(self, frame: pl.DataFrame) -> list[Alert]:
        """Executions (the contract's columns); may close buckets and raise alerts."""
        rows = frame.select(
            "exec_id", "order_id", "child_id", "symbol", "venue", "exec_ts", "qty", "price",
            "liquidity_flag", "fee",
        ).to_dicts()  # fmt: skip
        rows = [r for r in rows if None not in (r["exec_id"], r["exec_ts"], r["qty"], r["price"])]
        self._fills += len(rows)
        if rows:
            top = max(epoch_us(r["exec_ts"]) for r in rows)
            self._exec_max = max(self._exec_max or top, top)
        self._queue(rows)
        return self._advance()

    def _queue(self, rows: Iterable[dict]) -> None:
        for r in rows:
            order = self.orders.get(r["order_id"])
            if order is None:
                self._waiting.append(r)
                continue
            bucket = (epoch_us(r["exec_ts"]) - self._open_us) // self._bucket_us
            if bucket < self._closed_below:
                self._late += 1
                continue
            event = TradeExecutedEvent(
                exec_id=r["exec_id"], order_id=r["order_id"], symbol=r["symbol"],
                venue=r["venue"], exec_ts=r["exec_ts"], qty=r["qty"], price=r["price"],
                side=order[0], liquidity_flag=r["liquidity_flag"], trade_date=self.trade_date,
                fee=r["fee"], child_id=r["child_id"],
            )  # fmt: skip
            self._open_buckets.setdefault(int(bucket), []).append(event)

    # -- buckets ------------------------------------------------------------------------------

    def data_time(self) -> int | None:
        """The watermark: the least of the executions' and the quotes' latest time (us)."""
        if self._exec_max is None or self._quote_max is None:
            return None
        return min(self._exec_max, self._quote_max)

    def _advance(self) -> list[Alert]:
        """Close every bucket whose end + settle_s the watermark has passed."""
        mark = self.data_time()
        if mark is None:
            return []
        settle = int(self.settings.settle_s * 1_000_000)
        closable = (mark - settle - self._open_us) // self._bucket_us  # buckets below close
        if closable <= self._closed_below:
            return []
        new: list[Alert] = []
        for bucket in sorted(b for b in self._open_buckets if b < closable):
            new.extend(self._close(bucket, self._open_buckets.pop(bucket)))
        self._closed_below = closable
        self.alerts.extend(new)
        return new

    def _close(self, bucket: int, fills: list[TradeExecutedEvent]) -> list[Alert]:
        self._buckets += 1
        acc: dict[tuple[str, str, str], _Acc] = {}
        metrics = self.settings.metrics
        for event in fills:
            scored = score_fill(event, self.book, self.quality)
            self._scored += 1
            subjects = {"desk": "all", "venue": event.venue, "algo": self.orders[event.order_id][1]}
            values = {m: scored.get(m) for m in metrics if m != LATENCY}
            if LATENCY in metrics:
                child = self.children.get(event.child_id) if event.child_id else None
                if child is not None and child[1] == "IOC":
                    values[LATENCY] = (epoch_us(event.exec_ts) - child[0]) / 1e3
            for metric, value in values.items():
                if value is None or not math.isfinite(value):
                    continue
                w = 1.0 if metric == LATENCY else event.qty
                for dim in self.settings.dimensions:
                    subject = subjects[dim]
                    if subject is None:
                        continue
                    a = acc.setdefault((dim, subject, metric), _Acc())
                    a.w += w
                    a.wx += w * value
                    a.n += 1
                    a.by_order[event.order_id] = a.by_order.get(event.order_id, 0.0) + w
        warm = bucket * self.settings.bucket_s < self.settings.warmup_s
        new = []
        for key, a in sorted(acc.items()):
            s = self.series.get(key)
            if s is None or a.n < self.settings.min_fills or a.w <= 0:
                continue
            x = a.wx / a.w
            w2 = a.w2
            n_eff = a.w * a.w / w2
            unit = None if warm else self.unit_sd(s)  # from the buckets before this one
            s.obs.append((x, n_eff))
            if unit is None:
                continue
            z = s.sign * (x - s.mu) / math.sqrt(unit * unit / n_eff + s.baseline_var)
            alert = self._score(s, bucket, a, x, w2, z)
            if alert is not None:
                new.append(alert)
        return new

    def unit_sd(self, s: _Series) -> float | None:
        """The series' dispersion per unit of n_eff this session, from its buckets so far
        (warm-up included): 1.4826 x the median absolute deviation of (x_b - median x)
        sqrt(n_eff_b), a robust standard deviation that one shifted bucket barely moves. None
        until `min_pool` buckets, or when it is 0 (a metric that does not vary).

        The daily series' standard error describes a whole day, whose fills cluster by order
        (cluster-robust); a minute holds one or two fills of each order, and its mean's spread
        is neither the day's per-fill nor its per-order figure, so it is measured here."""
        if len(s.obs) < self.settings.min_pool:
            return None
        obs = np.asarray(s.obs)
        x, root = obs[:, 0], np.sqrt(obs[:, 1])
        dev = np.abs(x - np.median(x)) * root
        unit = 1.4826 * float(np.median(dev)) * math.sqrt(self.settings.dispersion)
        unit = max(unit, math.sqrt(s.sigma2))
        return unit if unit > 0 else None

    def _score(
        self, s: _Series, bucket: int, a: _Acc, x: float, w2: float, z: float
    ) -> Alert | None:
        """One bucket of one series: the CUSUM step, and the alert at its first alarm."""
        s.z.append((bucket, z))
        z = min(max(z, -self.settings.z_clip), self.settings.z_clip)
        # detectors.cusum_path's recursion, one bucket at a time (the tests check the two agree).
        stat = max(0.0, s.stat + z - self.k)
        if s.stat <= 0.0:
            s.run_w = s.run_wx = s.run_w2 = 0.0
            s.run_start = bucket
        s.run_w += a.w
        s.run_wx += a.wx
        s.run_w2 += w2
        alarm = stat > self.h
        s.stat = 0.0 if alarm else stat
        if not alarm or s.alerted:
            return None
        s.alerted = True
        return self._alert(s, bucket, x, z, stat, a)

    def _alert(self, s: _Series, bucket: int, x: float, z: float, stat: float, a: _Acc) -> Alert:
        dim, subject, metric = s.key
        recent = s.run_wx / s.run_w
        unit = self.unit_sd(s) or 0.0
        run_scale = math.sqrt(unit * unit * s.run_w2 / s.run_w**2 + s.baseline_var)
        shift_sd = abs(recent - s.mu) / run_scale
        at = self.open + timedelta(seconds=bucket * self.settings.bucket_s)
        since = self.open + timedelta(seconds=(s.run_start or bucket) * self.settings.bucket_s)
        evidence = {
            "intraday": True,
            "bucket_start": at.isoformat(),
            "bucket_s": self.settings.bucket_s,
            "run_start": since.isoformat(),
            "baseline": s.mu,
            "recent_level": recent,
            "value": x,
            "z": z,
            "statistic": stat,
            "threshold": self.h,
            "reference_k": self.k,
            "fills": a.n,
            "shift": recent - s.mu,
            "shift_sd": shift_sd,
        }
        return Alert(
            alert_id=intraday_alert_id(dim, subject, metric, self.trade_date),
            trade_date=self.trade_date,
            dimension=dim,
            subject=subject,
            metric=metric,
            severity=severity(shift_sd, None, False, self.alert_settings),
            detector="cusum",
            evidence=evidence,
            opened_at=self.clock(),
        )

    def counts(self) -> Counts:
        mark = self.data_time()
        return Counts(
            fills=self._fills,
            scored=self._scored,
            late=self._late,
            waiting=len(self._waiting),
            refused_quotes=self.book.refused,
            buckets=self._buckets,
            data_time=None if mark is None else EPOCH + timedelta(microseconds=mark),
        )


# ---------------------------------------------------------------------------------------------
# Daily series of a landed or simulated day (baselines for tests and the bench)


def daily_series(tables: dict[str, pl.DataFrame], trade_date: date) -> pl.DataFrame:
    """The fill metrics' rows of `monitor.metric_series` for one day of contract tables
    (executions, quotes, orders, child_orders), scored by the batch path: what the daily
    pipeline writes for those metrics, for a lake without the pipeline (tests, the bench)."""
    from eqs_pipeline.monitor.series import metric_series
    from eqs_pipeline.quality.fills import fill_quality

    dated = {k: v.with_columns(trade_date=pl.lit(trade_date)) for k, v in tables.items()}
    fills = fill_quality(dated["executions"], dated["quotes"], dated["orders"]).collect()
    none = pl.lit(None, pl.Float64)
    orders = dated["orders"].with_columns(
        arrival_mid=none,
        fill_rate=none,
        cost_z=none,
        cost_vs_expected_bps=none,
        expected_cost_source=pl.lit(None, pl.String),
    )
    return metric_series(
        fills, orders, dated["child_orders"], 0, 0, trade_date, ("desk", "venue", "algo")
    ).filter(pl.col("metric") != "fill_rate")
