"""The venue's public WS v2 channels besides `book`: `ticker`, `trade`, `ohlc`, `instrument`.

Each feed is one subscription kind (a pair and, where the channel has one, its parameter) with
its subscribers, like marketdata.Feed for the book: MarketData asks every feed of a pair whose
book changed for its `update` at each publish, frames it once and writes it to each subscriber.
A trade changes the book it trades on, so a publish that follows trades reaches these feeds.
What they send is read from the market's Tape (the engine records each trade there once), the
state REST Ticker, Trades and OHLC answer from, so the two APIs never disagree.

Shapes as Kraken documents them (facts 10.1; docs.kraken.com/api/docs/websocket-v2/ticker,
/trade, /ohlc, /instrument). Choices where the docs are silent, written down:
- ticker: `event_trigger` "trades" (the default) sends on each publish that followed a trade,
  "bbo" on each publish where the best bid or ask (price or quantity) moved; its 24-hour figures
  are Ticker's (Tape.stats over the last 1,440 minutes), `change` from the 24-hour open.
- trade: an update lists the trades since the last one sent, oldest first (Kraken batches
  trades of different takers into one message too); the snapshot the last 50 (facts 10.1),
  sent only when asked: `snapshot` defaults to false, as Kraken's v2 trade page says.
- ohlc: an update is the running candle of the interval, once per publish that followed a
  trade; the snapshot holds the latest two candles, as Kraken's documented example does. The
  default interval is 1 minute (v1's documented default; v2's page names none).
- instrument: a snapshot of every asset and pair; the venue's markets never change, so it
  sends no update. Its pairs are spot only (`marginable` false), so they carry none of the
  margin fields (`margin_initial`, `position_limit_long`/`_short`) Kraken gives marginable
  ones; `tick_size` (deprecated) equals `price_increment`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson

from loadgen.protocol import assets
from loadgen.protocol.clock import rfc3339

if TYPE_CHECKING:
    from loadgen.venue.book import Book
    from loadgen.venue.pairs import Pair
    from loadgen.venue.tape import Tape

TRADE_SNAPSHOT: Final = 50  # "snapshot = last 50 trades" (facts 10.1)
OHLC_SNAPSHOT: Final = 2  # candles in an ohlc snapshot (Kraken's example shows two)
DAY_S: Final = 86_400
TRIGGERS: Final = ("trades", "bbo")
_SIDE_TYPE: Final = {"l": "limit", "m": "market"}


class PublicFeed(Protocol):
    """What MarketData asks of a feed (marketdata.Feed and the three here)."""

    subscribers: dict[Any, None]  # WS connections, in the order they came

    def snapshot(self, at: float) -> bytes: ...

    def update(self, book: Book, at: float) -> bytes | None: ...


def message(channel: str, kind: str, data: Any, timestamp: str | None = None) -> bytes:
    msg: dict[str, Any] = {"channel": channel, "type": kind}
    if timestamp is not None:
        msg["timestamp"] = timestamp
    msg["data"] = data
    return orjson.dumps(msg)


def _best(book: Book, side: str) -> tuple[int, int]:
    """A side's best price and its visible lots; (0, 0) when the side is empty."""
    levels = book.side(side)
    price = levels.best()
    if price is None:
        return 0, 0
    return price, sum(o.visible() for o in levels.levels[price].values())


class TickerFeed:
    __slots__ = ("book", "day", "pair", "subscribers", "tape", "told", "trigger")

    def __init__(self, pair: Pair, trigger: str, book: Book, tape: Tape) -> None:
        self.pair, self.trigger, self.book, self.tape = pair, trigger, book, tape
        self.subscribers: dict[Any, None] = {}
        self.told = self._key(book)
        self.day: tuple[Any, ...] = ()  # (trade seq, minute, the 24-hour figures) kept

    def _key(self, book: Book) -> Any:
        if self.trigger == "trades":
            return self.tape.seq
        return _best(book, "buy"), _best(book, "sell")

    def entry(self, now: float) -> dict[str, Any]:
        pair, tape = self.pair, self.tape
        bid, bid_qty = _best(self.book, "buy")
        ask, ask_qty = _best(self.book, "sell")
        open_, high, low, volume, pq, _ = self._day(now)
        change = tape.last - open_
        return {
            "symbol": pair.symbol,
            "bid": float(pair.fmt_price(bid)),
            "bid_qty": float(pair.fmt_qty(bid_qty)),
            "ask": float(pair.fmt_price(ask)),
            "ask_qty": float(pair.fmt_qty(ask_qty)),
            "last": float(pair.fmt_price(tape.last)),
            "volume": float(pair.fmt_qty(volume)),
            "vwap": float(pair.fmt_price(pq // volume if volume else tape.last)),
            "low": float(pair.fmt_price(low)),
            "high": float(pair.fmt_price(high)),
            "change": float(pair.fmt_price(change)),
            "change_pct": round(change * 100 / open_, 2) if open_ else 0.0,
        }

    def _day(self, now: float) -> tuple[int, int, int, int, int, int]:
        """The 24-hour figures (Tape.stats walks up to 1,440 candles): again only after a
        trade or a new minute, not on each best-price move a bbo ticker sends."""
        key = (self.tape.seq, int(now // 60))
        if self.day[:2] != key:
            self.day = (*key, self.tape.stats(now - DAY_S))
        return self.day[2]

    def snapshot(self, at: float) -> bytes:
        return message("ticker", "snapshot", [self.entry(at)])

    def update(self, book: Book, at: float) -> bytes | None:
        key = self._key(book)
        if key == self.told:
            return None
        self.told = key
        return message("ticker", "update", [self.entry(at)])


class TradeFeed:
    __slots__ = ("pair", "subscribers", "tape", "told")

    def __init__(self, pair: Pair, tape: Tape) -> None:
        self.pair, self.tape = pair, tape
        self.subscribers: dict[Any, None] = {}
        self.told = tape.seq

    def _entries(self, trades: list[tuple[int, int, float, str, str, int]]) -> list[dict]:
        pair = self.pair
        return [
            {"symbol": pair.symbol, "side": side, "price": float(pair.fmt_price(price)),
             "qty": float(pair.fmt_qty(qty)), "ord_type": _SIDE_TYPE[kind], "trade_id": seq,
             "timestamp": rfc3339(when)}
            for price, qty, when, side, kind, seq in trades
        ]  # fmt: skip

    def snapshot(self, at: float) -> bytes:
        trades = list(self.tape.trades)[-TRADE_SNAPSHOT:]
        return message("trade", "snapshot", self._entries(trades))

    def update(self, book: Book, at: float) -> bytes | None:
        tape = self.tape
        if tape.seq == self.told:
            return None
        new = []
        for trade in reversed(tape.trades):  # newest first, back to the last one told
            if trade[5] <= self.told:
                break
            new.append(trade)
        self.told = tape.seq
        new.reverse()
        return message("trade", "update", self._entries(new))


class OhlcFeed:
    __slots__ = ("interval", "pair", "subscribers", "tape", "told")

    def __init__(self, pair: Pair, interval: int, tape: Tape) -> None:
        self.pair, self.interval, self.tape = pair, interval, tape
        self.subscribers: dict[Any, None] = {}
        self.told = tape.seq

    def _entry(self, row: list[Any]) -> dict[str, Any]:
        pair, span = self.pair, self.interval * 60
        begin, o, h, low, c, pq, vol, n = row
        return {
            "symbol": pair.symbol,
            "open": float(pair.fmt_price(o)),
            "high": float(pair.fmt_price(h)),
            "low": float(pair.fmt_price(low)),
            "close": float(pair.fmt_price(c)),
            "trades": n,
            "volume": float(pair.fmt_qty(vol)),
            "vwap": float(pair.fmt_price(pq // vol if vol else c)),
            "interval_begin": rfc3339(begin),
            "interval": self.interval,
            "timestamp": rfc3339(begin + span),
        }

    def snapshot(self, at: float) -> bytes:
        rows = self.tape.ohlc(self.interval, 0)[-OHLC_SNAPSHOT:]
        return message("ohlc", "snapshot", [self._entry(r) for r in rows], rfc3339(at))

    def update(self, book: Book, at: float) -> bytes | None:
        if self.tape.seq == self.told:
            return None
        self.told = self.tape.seq
        row = self.tape.running(self.interval)
        return message("ohlc", "update", [self._entry(row)], rfc3339(at))


def instrument_data(pairs: list[Pair]) -> dict[str, Any]:
    """The `instrument` snapshot's data: every asset the markets trade and every pair."""
    alts: dict[str, None] = {}
    for pair in pairs:
        alts[pair.base] = alts[pair.quote] = None
    asset_rows = []
    for alt in alts:
        decimals, display = assets.asset_decimals(alt)
        asset_rows.append({"id": assets.v2_asset(alt), "status": "enabled",
                           "precision": decimals, "precision_display": display,
                           "borrowable": False, "collateral_value": 1.0,
                           "margin_rate": 0.0})  # fmt: skip
    pair_rows = []
    for p in pairs:
        base, quote = p.symbol.split("/")
        pair_rows.append({
            "symbol": p.symbol, "base": base, "quote": quote, "status": "online",
            "qty_precision": p.lot_decimals, "qty_increment": 10.0**-p.lot_decimals,
            "qty_min": float(p.ordermin), "price_precision": p.price_decimals,
            "price_increment": 10.0**-p.price_decimals, "tick_size": 10.0**-p.price_decimals,
            "cost_precision": p.cost_decimals,
            "cost_min": float(p.costmin), "marginable": False, "has_index": False,
        })  # fmt: skip
    return {"assets": asset_rows, "pairs": pair_rows}
