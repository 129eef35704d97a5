"""The in-process event path: a `TradeExecutedEvent` scored into a fill-level
`ExecutionQualityEvent` the moment it arrives, against NBBO state held in memory.

    book = QuoteBook(trade_date)                             # one book per session
    book.on_quote("XYZ", ts, bid, ask, bid_sz, ask_sz)      # as quotes arrive
    event = score_fill(TradeExecutedEvent(...), book)        # one fill, microseconds
    book.close()                                             # the session is over

The formulas are those of `formulas` (the batch path evaluates the very same functions on
Polars expressions) and the quote conventions those of `asof`: the prevailing quote is the last
of the fill's trade date strictly before the fill, the mid at t + h the last at or before t + h,
and after the session's last quote the session's last quote. Crossed quotes (bid above ask) are
refused, as staging quarantines them. A horizon the book cannot settle yet (no quote after t + h
has arrived and the session is still open) is listed in `pending_horizons` and its figures are
left null; scoring the fill again later (or after `close()`) fills them in. Micro-batches go through `fill_quality` / `order_quality` with
a prepared `Timeline` (see `asof`), so nothing here is a second implementation of a metric.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.quality import formulas as f
from eqs_pipeline.quality.fills import horizon_label

EVENT_TYPE = "ExecutionQualityEvent"
FILL_SCHEMA_VERSION = "1.0.0"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(ts: datetime) -> int:
    """An aware timestamp as integer microseconds since the epoch (exact, no float)."""
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class TradeExecutedEvent:
    """One fill as the desk's systems publish it (the `executions` row plus the order's side)."""

    exec_id: str
    order_id: str
    symbol: str
    venue: str
    exec_ts: datetime
    qty: float
    price: float
    side: str
    liquidity_flag: str
    trade_date: date
    fee: float | None = None
    child_id: str | None = None


@dataclass
class _Series:
    ts: list[int] = field(default_factory=list)
    quotes: list[tuple[float, float, float, float, datetime]] = field(default_factory=list)


class QuoteBook:
    """The NBBO history of one session (trade date), per symbol, in memory (append in time order
    is O(1)). Events of another trade date are refused: a fill before its session's first quote
    has no prevailing quote, never the previous session's last."""

    def __init__(self, trade_date: date) -> None:
        self.trade_date = trade_date
        self.closed = False
        self.refused = 0
        self._series: dict[str, _Series] = {}

    def on_quote(
        self,
        symbol: str,
        ts: datetime,
        bid: float,
        ask: float,
        bid_sz: float | None = None,
        ask_sz: float | None = None,
    ) -> bool:
        """Add one quote; False (and counted in `refused`) for a crossed quote, which staging
        would quarantine (`crossed_quote`), so that the event path uses the quotes batch uses."""
        if bid > ask:
            self.refused += 1
            return False
        s = self._series.setdefault(symbol, _Series())
        t = epoch_us(ts)
        # Ties and late quotes go after every quote with the same or an earlier stamp, which is
        # the batch path's "last one landed wins".
        at = len(s.ts) if not s.ts or t >= s.ts[-1] else bisect.bisect_right(s.ts, t)
        s.ts.insert(at, t)
        s.quotes.insert(at, (bid, ask, bid_sz, ask_sz, ts))
        return True

    def close(self) -> None:
        """The session is over: no quote will come, every horizon is settled (after the last
        quote, by the last quote, as in batch)."""
        self.closed = True

    def load(self, rows) -> QuoteBook:
        """Add quotes from an iterable of (symbol, ts, bid, ask, bid_sz, ask_sz)."""
        for row in rows:
            self.on_quote(*row)
        return self

    def _at(self, symbol: str, t: int, *, strict: bool):
        s = self._series.get(symbol)
        if s is None:
            return None, False
        i = (bisect.bisect_left if strict else bisect.bisect_right)(s.ts, t) - 1
        reached = self.closed or (bool(s.ts) and s.ts[-1] > t)
        return (s.quotes[i] if i >= 0 else None), reached


def score_fill(
    event: TradeExecutedEvent, book: QuoteBook, settings: QualitySettings | None = None
) -> dict:
    """The fill's quality event: every fill metric of `quality.fill_quality`, by name.

    `pending_horizons` lists the horizons whose t + h the book has not passed yet (their figures
    are null until it has, or until the book is closed). An event of another trade date than the
    book's is a ValueError.
    """
    if event.trade_date != book.trade_date:
        raise ValueError(
            f"fill {event.exec_id} of trade date {event.trade_date} scored against the quote book "
            f"of {book.trade_date}: keep one QuoteBook per session"
        )
    settings = settings or QualitySettings()
    d = 1.0 if event.side == "BUY" else -1.0
    p = event.price
    t = epoch_us(event.exec_ts)
    quote, _ = book._at(event.symbol, t, strict=True)
    notional = event.qty * p
    out: dict = {
        "event_type": EVENT_TYPE,
        "schema_version": FILL_SCHEMA_VERSION,
        "exec_id": event.exec_id,
        "order_id": event.order_id,
        "trade_date": event.trade_date,
        "symbol": event.symbol,
        "venue": event.venue,
        "side": event.side,
        "side_sign": int(d),
        "liquidity_flag": event.liquidity_flag,
        "exec_ts": event.exec_ts,
        "qty": event.qty,
        "price": p,
        "notional": notional,
        "fee": event.fee,
        "fee_bps": None if event.fee is None else f.fee_bps(event.fee, notional),
    }
    if quote is None:
        bid = ask = m = None
        out.update(
            quote_ts=None, nbb=None, nbo=None, nbb_size=None, nbo_size=None, mid=None,
            quoted_spread_bps=None, effective_spread_bps=None, price_improvement_bps=None,
            quote_position=None, spread_capture=None,
        )  # fmt: skip
    else:
        bid, ask, bid_sz, ask_sz, quote_ts = quote
        m = f.mid(bid, ask)
        pi = f.price_improvement_bps(d, p, bid, ask, m)
        out.update(
            quote_ts=quote_ts,
            nbb=bid,
            nbo=ask,
            nbb_size=bid_sz,
            nbo_size=ask_sz,
            mid=m,
            quoted_spread_bps=f.quoted_spread_bps(bid, ask, m),
            effective_spread_bps=f.effective_spread_bps(d, p, m),
            price_improvement_bps=pi,
            quote_position="improved" if pi > 0 else "at_quote" if pi == 0 else "outside",
            spread_capture=None if ask == bid else f.spread_capture(d, p, m, bid, ask),
        )
    pending = []
    for h in settings.horizons_s:
        lab = horizon_label(h)
        later, reached = book._at(event.symbol, t + h * 1_000_000, strict=False)
        if not reached:
            pending.append(h)
        m_h = None if later is None or not reached else f.mid(later[0], later[1])
        out[f"mid_{lab}"] = m_h
        known = m is not None and m_h is not None
        out[f"realized_spread_{lab}_bps"] = f.realized_spread_bps(d, p, m, m_h) if known else None
        out[f"price_impact_{lab}_bps"] = f.price_impact_bps(d, m, m_h) if known else None
        out[f"markout_{lab}_bps"] = None if m_h is None else f.markout_bps(d, p, m_h)
    out["null_reason"] = "no_prior_quote" if m is None else None
    out["pending_horizons"] = pending
    return out
