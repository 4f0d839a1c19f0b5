"""The FIX 4.4 acceptor: Kraken's logon, the session layer, orders in, ExecutionReports out.

Validation levels (facts 5): a message the framer cannot trust or that lacks a required field
gets a session Reject (35=3); a business refusal gets a BusinessMessageReject (35=j) with the
E-string in 58; accepted orders get ExecutionReports (35=8). A stream that is not FIX at all
is closed.

A session is identified by SenderCompID and outlives its TCP connection: sequence numbers and
the resend store carry over to the next Logon (unless 141=Y), and events for its orders while
it is away are numbered and stored, so a ResendRequest after re-logon recovers them. With
CancelOrdersOnDisconnect (8674) = 0, the default, the session's orders are cancelled when the
connection drops.
"""

from __future__ import annotations

import itertools
import re
from math import inf as INF
from typing import TYPE_CHECKING, Any, Final

from loadgen import ratelimit
from loadgen.protocol import errors, fix, numbers, orderkinds
from loadgen.protocol.clock import fix_time
from loadgen.protocol.fix import FixFramingError, FixReader, Garbled
from loadgen.protocol.fixsession import DAY_S, FixSession, last_rollover
from loadgen.venue.accounts import Account
from loadgen.venue.book import BUY, Order
from loadgen.venue.conn import Connection
from loadgen.venue.engine import (
    E_UNAVAILABLE,
    E_UNKNOWN_ORDER,
    E_UNKNOWN_PAIR,
    EV_AMENDED,
    EV_CANCELED,
    EV_EXPIRED,
    EV_NEW,
    EV_REFILL,
    EV_TRADE,
    EV_TRIGGERED,
    INVALID,
    TRIGGER_TYPES,
    Event,
    OrderSpec,
    VenueError,
    check_deadline,
    invalid,
    parse_price,
    parse_qty,
)

if TYPE_CHECKING:
    from loadgen.venue.context import ServerContext

LOGON_TIMEOUT_S = 10.0  # a connection must have logged on by then
TARGET_COMP_ID: Final = "KRAKEN-TRD"  # facts 5: TargetCompID of the trading session
NONCE_WINDOW_MS: Final = 5000  # 5025 must be within 5 s of server time (facts 5)
DEFAULT_HEARTBEAT_S: Final = 60  # 108: 60 recommended
# UTCTimestamp with fractions, e.g. 20240101-12:00:00.123
FIX_TIME_FORMAT: Final = "%Y%m%d-%H:%M:%S.%f"

# BusinessRejectReason (380) for the venue's refusals (facts 5, 35=j).
BR_OTHER: Final = 0
BR_UNKNOWN_ID: Final = 1
BR_UNKNOWN_SECURITY: Final = 2
BR_UNSUPPORTED_MSGTYPE: Final = 3
BR_APP_NOT_AVAILABLE: Final = 4

# OrdType (40) and TimeInForce (59) codes (facts 5); trailing stops are refused by name.
_ORD_TYPES: Final = orderkinds.FIX_ORD_TYPES  # the traders' own table (protocol/orderkinds.py)
_REFUSED_ORD_TYPES: Final = {"U": "trailing-stop", "V": "trailing-stop-limit"}
_ORD_TYPE_CODE: Final = {v: k for k, v in _ORD_TYPES.items()} | {"iceberg": "2"}
_TIF: Final = orderkinds.FIX_TIME_IN_FORCE
_TIF_CODE: Final = {v: k for k, v in _TIF.items()}
_STP: Final = {"0": "cancel-both", "1": "cancel-newest", "2": "cancel-oldest"}  # 7928
# NewOrderSingle tags Kraken documents that the venue does not serve: refused by name.
_REFUSED_TAGS: Final = {
    5001: "Leverage (5001): margin trading is not served by the embedded venue",
    168: "EffectiveTime (168): a scheduled start is not served by the embedded venue",
}
_REFUSED_TAG_SET: Final = frozenset(_REFUSED_TAGS)
_EXEC_INST_REFUSED: Final = {"E": "ExecInst (18) E: reduce-only (margin) is not served",
                      "f": "ExecInst (18) f: fees are charged in the quote currency here"}  # fmt: skip
_exec_ids = itertools.count(1)
_UUID: Final = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
MAX_CL_NUMBER_DIGITS: Final = 18


# Sessions (SenderCompIDs) are kept across reconnects, as Kraken keeps a day's; once this many
# exist, those with no connection for HOST_IDLE_S are forgotten (a reconnect after that starts
# a new session), so the table follows the sessions in use, not every CompID ever seen.
HOSTS_SWEEP_AT: Final = 1024
HOST_IDLE_S: Final = 600.0


def _forget_idle_hosts(hosts: dict[str, FixHost], now: float) -> None:
    if len(hosts) < HOSTS_SWEEP_AT:
        return
    for sender in [s for s, h in hosts.items() if h.conn is None and h.left_at < now - HOST_IDLE_S]:
        del hosts[sender]


class Rollover:
    """Kraken's daily FIX rollover (fixsession.ROLLOVER_UTC): at `second` into each UTC day
    every session is logged out and numbered from 1 again, and for `length_s` no Logon is
    accepted. `second` None: no rollover (`loadgen venue --fix-rollover off`)."""

    def __init__(self, second: int | None, length_s: float, now: float) -> None:
        self.second = second
        self.length_s = length_s
        self.next_at = last_rollover(now, second) + DAY_S if second is not None else INF
        self.until = 0.0  # logons are refused before this while one is under way

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def refusal(self, now: float) -> str:
        """Why a Logon now is refused ('' when it is not)."""
        if now >= self.until:
            return ""
        return f"FIX session rollover in progress until {fix_time(self.until)[9:17]} UTC"

    def roll(self, hosts: dict[str, FixHost], now: float) -> int:
        """Log every session out and start every one's numbering again: sessions rolled."""
        self.until = now + self.length_s
        self.next_at += DAY_S * (1 + (now - self.next_at) // DAY_S)
        for host in hosts.values():
            conn = host.conn
            if conn is not None and not conn.closed:
                host.session.logout("FIX session rollover: sequence numbers restart at 1", now)
                conn.write_outbox()
                conn.close_after_write()
                conn.closed = True
            host.session.new_day()
        return len(hosts)


class FixHost:
    """The venue's side of one FIX session (one SenderCompID), across reconnects."""

    def __init__(self, session: FixSession, account: Account, wall: Any) -> None:
        self.session = session
        self.account = account
        self.wall = wall
        self.conn: FixConnection | None = None
        self.cancel_on_disconnect = True
        self.left_at = 0.0  # wall time its last connection went
        self.last_cl_number = 0  # ClOrdIDs that are numbers must keep increasing (facts 11)

    def on_events(self, events: list[Event]) -> None:
        now = self.wall()
        for event in events:
            body = execution_report(event, now)
            if body:
                self.session.send(fix.EXECUTION_REPORT, body, now)
        if self.conn is not None:
            self.conn.write_outbox()
        else:  # away: numbered and stored for a ResendRequest, never sent ahead of a Logon
            self.session.outbox.clear()


def execution_report(event: Event, now: float) -> str:
    """The ER body (after the header) for an engine event; '' for events FIX does not report.
    `now` is the TransactTime (60) every ER carries (facts 11)."""
    order = event.order
    pair = order.pair
    kind = event.kind
    done = event.filled >= order.qty
    live = fix.STATUS_PARTIAL if event.filled else fix.STATUS_NEW
    if kind == EV_NEW:
        exec_type, status = fix.EXEC_NEW, fix.STATUS_NEW
    elif kind == EV_TRADE:
        exec_type, status = fix.EXEC_TRADE, fix.STATUS_FILLED if done else fix.STATUS_PARTIAL
    elif kind == EV_CANCELED:
        exec_type, status = fix.EXEC_CANCELED, fix.STATUS_CANCELED
    elif kind == EV_AMENDED:
        exec_type, status = fix.EXEC_REPLACED, live
    elif kind == EV_EXPIRED:
        exec_type, status = fix.EXEC_EXPIRED, fix.STATUS_EXPIRED
    elif kind in (EV_REFILL, EV_TRIGGERED):  # restated: a new slice, or the trigger reached
        exec_type, status = fix.EXEC_RESTATED, live
    else:
        return ""  # 'filled' is carried by the trade's 39=2
    # 11 is the ClOrdID of the request that caused the report (a cancel's or a replace's own),
    # 41 the order's ClOrdID before it: the replaced one, or the cancelled order's.
    cl_ord_id = order.cl_ord_id or ""
    orig = ""
    if isinstance(event.ref, str) and event.ref:
        cl_ord_id = event.ref
        orig = event.orig or (order.cl_ord_id or "" if kind == EV_CANCELED else "")
    # Quantities are mostly zero or the order's own quantity: reuse those strings (this runs
    # once per order event; formatting a decimal costs more than the rest of the line).
    qty = order.qty
    qty_text = pair.fmt_qty(qty)
    filled = event.filled
    leaves = 0 if kind == EV_CANCELED or done else qty - filled
    zero = pair.zero_qty
    cum_text = zero if not filled else qty_text if filled == qty else pair.fmt_qty(filled)
    leaves_text = zero if not leaves else qty_text if leaves == qty else pair.fmt_qty(leaves)
    avg_text = (
        f"{order.cost / order.filled / pair.price_scale:.{pair.price_decimals}f}"
        if order.filled
        else pair.zero_price
    )
    ids = f"11={cl_ord_id}\x01" if cl_ord_id else ""
    if orig:
        ids += f"41={orig}\x01"
    price = f"44={pair.fmt_price(order.price)}\x01" if order.price else ""
    if order.trigger:
        price += f"99={pair.fmt_price(order.trigger)}\x01"
    if order.display:
        price += f"1138={pair.fmt_qty(order.display)}\x01"
    fill = (
        f"31={pair.fmt_price(event.last_price)}\x0132={pair.fmt_qty(event.last_qty)}\x01"
        if kind == EV_TRADE
        else ""
    )
    text = f"58={event.reason}\x01" if kind in (EV_CANCELED, EV_EXPIRED) and event.reason else ""
    # after a trigger, 40 shows the resulting execution model (facts 11)
    ord_type = _ORD_TYPE_CODE[order.order_type] if order.armed or not order.trigger else (
        "2" if order.price else "1")  # fmt: skip
    return (
        f"37={order.txid}\x01{ids}17={event.trade_id or next(_exec_ids)}\x01150={exec_type}\x01"
        f"39={status}\x0155={pair.symbol}\x0154={fix.SIDE_CODES[order.side]}\x01"
        f"40={ord_type}\x0138={qty_text}\x01{price}{fill}"
        f"14={cum_text}\x01151={leaves_text}\x016={avg_text}\x01{text}"
        f"59={_TIF_CODE[order.tif]}\x0160={fix_time(now)}\x01"
    )


class MissingField(Exception):
    def __init__(self, tag: int) -> None:
        super().__init__(tag)
        self.tag = tag


class FixConnection(Connection):
    protocol_name = "fix"

    def __init__(self, venue: ServerContext) -> None:
        super().__init__(venue)
        self.reader = FixReader()
        self.host: FixHost | None = None
        self.exchange = venue.exchange
        self.wall = venue.exchange.wall

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.loop.call_later(LOGON_TIMEOUT_S, self._logon_overdue)

    def _logon_overdue(self) -> None:
        """No Logon yet (a peer that sent nothing, or half a frame): closed without a word, as
        Kraken may close a failed logon (facts 5); it would hold a socket forever otherwise."""
        if self.host is None and not self.closed:
            self.abort()

    # ---- bytes in ------------------------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        try:
            items = self.reader.feed(data)
        except FixFramingError as exc:
            self._give_up(str(exc))
            return
        now = self.wall()  # one clock read per read, not per message
        for item in items:
            try:
                self._on_message(item, now)
            except Exception as bug:  # a bug must cost one message, never the venue
                self.venue.problems.report("FIX handler", bug)
                if self.host is not None:
                    self.host.session.logout("internal error", self.wall())
            if self.closed or (self.host is not None and self.host.session.closed):
                break
        self.write_outbox()
        self.exchange.flush()
        if self.host is not None and self.host.session.closed:
            self.close_after_write()
            self.closed = True

    def _on_message(self, item: str | Garbled, now: float) -> None:
        host = self.host
        if host is None:
            self._on_logon(item, now)
            return
        session = host.session
        if isinstance(item, Garbled):
            seq = item.seq_num()
            if seq == session.next_in:
                session.next_in += 1  # received, refused: the number is used up
            session.reject(seq, fix.REJECT_OTHER, item.reason, now)
            return
        try:
            fields = fix.decode(item)
        except ValueError as exc:
            session.reject(None, fix.REJECT_INCORRECT_FORMAT, str(exc), now)
            return
        for app in session.receive(fields, now):
            self._on_app(app, now)

    def write_outbox(self) -> None:
        if self.host is not None and self.host.session.outbox:
            self.send(self.host.session.drain(), self.reply_delay())

    def _give_up(self, reason: str) -> None:
        """The stream cannot be read: say why if a session exists, then close."""
        if self.host is not None:
            self.host.session.logout(reason, self.wall())
            self.write_outbox()
        self.close_after_write()
        self.closed = True

    def connection_lost(self, exc: Exception | None) -> None:
        host = self.host
        if host is not None and host.conn is self:
            host.conn = None
            host.left_at = self.wall()
            if host.cancel_on_disconnect:
                mine = [o for o in host.account.orders.values() if o.session is host]
                if mine:
                    self.exchange.cancel_batch(host.account, mine, reason="Cancel on disconnect")
                    self.exchange.flush()
        super().connection_lost(exc)

    # ---- logon -------------------------------------------------------------------------------

    def _on_logon(self, item: str | Garbled, now: float) -> None:
        if isinstance(item, Garbled):
            self._refuse_logon({}, f"Logon garbled: {item.reason}", now)
            return
        try:
            fields = fix.decode(item)
        except ValueError as exc:
            self._refuse_logon({}, str(exc), now)
            return
        rollover = self.venue.fix_rollover
        problem = rollover.refusal(now) if rollover is not None else ""
        if problem:
            self._refuse_logon(fields, problem, now)
            return
        problem, account = self._authenticate(fields, now)
        if problem:
            self._refuse_logon(fields, problem, now)
            return
        sender = fields[fix.SENDER_COMP_ID]
        host = self.venue.fix_hosts.get(sender)
        if host is None or host.account is not account:
            _forget_idle_hosts(self.venue.fix_hosts, now)
            host = FixHost(
                FixSession(TARGET_COMP_ID, sender, DEFAULT_HEARTBEAT_S), account, self.wall
            )
            self.venue.fix_hosts[sender] = host
        if host.conn is not None and not host.conn.closed:
            self._refuse_logon(fields, "session already logged on", now)
            return
        if host.session.logon_too_low(fields):
            expected = host.session.next_in
            self._refuse_logon(
                fields,
                f"MsgSeqNum too low, expecting {expected} but received {fields[fix.MSG_SEQ_NUM]}",
                now,
            )
            return
        account.last_fix_nonce = int(fields[fix.KRAKEN_NONCE])
        host.cancel_on_disconnect = fields.get(fix.CANCEL_ON_DISCONNECT, "0") != "1"
        host.conn = self
        self.host = host
        host.session.accept_logon(fields, now)

    def _authenticate(self, fields: dict[int, str], now: float) -> tuple[str, Any]:
        if fields.get(fix.MSG_TYPE) != fix.LOGON:
            return "First message must be Logon", None
        for tag, name in (
            (fix.SENDER_COMP_ID, "SenderCompID"),
            (fix.MSG_SEQ_NUM, "MsgSeqNum"),
            (fix.USERNAME, "UserName"),
            (fix.PASSWORD, "Password"),
            (fix.KRAKEN_NONCE, "Nonce"),
            (98, "EncryptMethod"),
            (fix.HEARTBT_INT, "HeartBtInt"),
        ):
            if not fields.get(tag):
                return f"Missing Mandatory Field: {name} ({tag})", None
        if fields[98] != "0":
            return "EncryptMethod (98) must be 0 (TLS carries the encryption)", None
        if fields.get(fix.TARGET_COMP_ID) != TARGET_COMP_ID:
            return f"TargetCompID (56) must be {TARGET_COMP_ID}", None
        seq = numbers.wire_int(fields[fix.MSG_SEQ_NUM])
        if seq is None:
            return "MsgSeqNum (34) is not a number", None
        hb = numbers.wire_int(fields.get(fix.HEARTBT_INT, str(DEFAULT_HEARTBEAT_S)))
        if hb is None or hb < 1:
            return "HeartBtInt (108) must be a positive number of seconds", None
        account = self.venue.accounts.get(fields[fix.USERNAME])
        if account is None:
            return errors.INVALID_KEY, None
        if fields[fix.SENDER_COMP_ID] not in account.fix_comp_ids:
            # Kraken assigns the SenderCompIDs (facts 5); its refusal's text is not documented
            return (
                f"SenderCompID (49) {fields[fix.SENDER_COMP_ID]!r} is not assigned to this API key",
                None,
            )
        nonce = numbers.nonce(fields[fix.KRAKEN_NONCE])
        if nonce is None or abs(nonce - now * 1000) > NONCE_WINDOW_MS:
            return (
                f"{errors.INVALID_NONCE} (5025 must be ms since epoch within 5 s of server time)",
                None,
            )
        if nonce <= account.last_fix_nonce:
            return errors.INVALID_NONCE, None
        expected = fix.logon_password(  # over the texts as sent, which is what the peer signed
            account.secret,
            fields[fix.MSG_SEQ_NUM],
            fields[fix.SENDER_COMP_ID],
            TARGET_COMP_ID,
            account.api_key,
            fields[fix.KRAKEN_NONCE],
        )
        if expected != fields[fix.PASSWORD]:
            return errors.INVALID_SIGNATURE, None
        return "", account

    def _refuse_logon(self, fields: dict[int, str], text: str, now: float) -> None:
        """Logout with the reason, then close (facts 5: "Logout with a reason")."""
        peer = fields.get(fix.SENDER_COMP_ID) or "UNKNOWN"
        temp = FixSession(TARGET_COMP_ID, peer)
        temp.logout(text, now)
        self.send(temp.drain())
        self.close_after_write()
        self.closed = True

    # ---- application messages -------------------------------------------------------------------

    def _on_app(self, fields: dict[int, str], now: float) -> None:
        assert self.host is not None
        session = self.host.session
        msg_type = fields.get(fix.MSG_TYPE, "")
        handler = _APP_HANDLERS.get(msg_type)
        if handler is None:
            self._business_reject(
                fields, BR_UNSUPPORTED_MSGTYPE, f"Unsupported Message Type {msg_type!r}", now
            )
            return
        if msg_type in _ORDER_MESSAGES:
            self.venue.served["fix"] += 1
        if self.faults.drop_ratio and self.faults.drop():
            self.abort()
            return
        if self.faults.unavailable_ratio and self.faults.unavailable():
            self._business_reject(fields, BR_APP_NOT_AVAILABLE, E_UNAVAILABLE, now)
            return
        try:
            if msg_type in _ORDER_MESSAGES and fields.get(11):
                self._check_cl_ord_id(fields[11])
            if 62 in fields:  # ValidUntilTime: the FIX deadline (facts 5)
                check_deadline(fields[62], now, "ValidUntilTime (62)", FIX_TIME_FORMAT)
            handler(self, fields, now)
        except MissingField as exc:
            name = fix.FIELD_NAMES.get(exc.tag, str(exc.tag))
            session.reject(
                numbers.wire_int(fields[fix.MSG_SEQ_NUM]) or 0,
                fix.REJECT_REQUIRED_TAG_MISSING,
                f"Missing Mandatory Field: {name} ({exc.tag})",
                now,
                ref_tag=exc.tag,
                ref_msg_type=msg_type,
            )
        except VenueError as refused:
            self._business_reject(fields, _reason_code(refused), refused.message, now)

    def _check_cl_ord_id(self, value: str) -> None:
        """Kraken's ClOrdID (11): an ever-increasing positive number of up to 18 digits, or a
        UUID (facts 11). Numbers are checked against the session's last; UUIDs by form only."""
        assert self.host is not None
        # the common case first; ASCII digits only (the message is read as latin-1: "²" is
        # a digit to str.isdigit, and int() refuses it)
        if value.isascii() and value.isdigit() and len(value) <= MAX_CL_NUMBER_DIGITS:
            number = int(value)
            if number > 0:
                if number <= self.host.last_cl_number:
                    raise invalid(
                        f"ClOrdID (11) {value} is not above the session's last, "
                        f"{self.host.last_cl_number}"
                    )
                self.host.last_cl_number = number
                return
        elif _UUID.fullmatch(value):
            return
        raise invalid("ClOrdID (11) must be an ever-increasing number of up to 18 digits or a UUID")

    def _business_reject(self, fields: dict[int, str], reason: int, text: str, now: float) -> None:
        assert self.host is not None
        body: list[tuple[int, object]] = [
            (fix.REF_SEQ_NUM, fields.get(fix.MSG_SEQ_NUM, "0")),
            (fix.REF_MSG_TYPE, fields.get(fix.MSG_TYPE, "")),
        ]
        if fields.get(11):
            body.append((fix.BUSINESS_REJECT_REF_ID, fields[11]))
        body += [(fix.BUSINESS_REJECT_REASON, reason), (fix.TEXT, text)]
        self.host.session.send(fix.BUSINESS_REJECT, body, now)

    def _need(self, fields: dict[int, str], *tags: int) -> None:
        for tag in tags:
            if not fields.get(tag):
                raise MissingField(tag)

    def _new_order(self, fields: dict[int, str], now: float) -> None:
        get = fields.get
        if not (get(11) and get(54) and get(55) and get(38) and get(40) and get(60)):
            self._need(fields, 11, 54, 55, 38, 40, 60)  # names the first missing one
        assert self.host is not None
        account = self.host.account
        pair = self.exchange.pair(fields[55])
        try:
            spec = self._spec(fields, pair, now)
        except VenueError as exc:  # charged on receipt all the same (facts 3)
            self.exchange.charge_refused(account, pair, ratelimit.ADD_COST, exc)
        self.exchange.add_order(account, spec, origin="fix", session=self.host)

    def _spec(self, fields: dict[int, str], pair: Any, now: float) -> OrderSpec:
        """A NewOrderSingle's order (facts 5: tags 40, 44, 99, 1138, 59, 126, 18, 7928)."""
        side = fix.SIDES.get(fields[54])
        if side is None:
            raise invalid("Side (54)")
        if not _REFUSED_TAG_SET.isdisjoint(fields):
            for tag, why in _REFUSED_TAGS.items():
                if fields.get(tag):
                    raise invalid(why)
        order_type = _ORD_TYPES.get(fields[40])
        if order_type is None:
            name = _REFUSED_ORD_TYPES.get(fields[40], repr(fields[40]))
            raise invalid(f"OrdType (40) {name} is not served by the embedded venue")
        if fields.get(1138):
            if order_type != "limit":
                raise invalid("DisplayQty (1138) is for limit orders (an iceberg) only")
            order_type = "iceberg"
        spec = OrderSpec(pair, side, order_type, 0, cl_ord_id=fields[11])
        inst = fields.get(18, "")
        if inst:
            for flag, why in _EXEC_INST_REFUSED.items():
                if flag in inst:
                    raise invalid(why)
        if "v" in inst:  # OrderQty in quote (REST's viqc): buy market orders only
            if order_type != "market" or side != BUY:
                raise invalid("ExecInst (18) v is for buy market orders only")
            spec.quote_cost = parse_qty(pair, fields[38], "OrderQty (38)") * pair.price_scale
        else:
            spec.qty = parse_qty(pair, fields[38], "OrderQty (38)")
        if order_type in ("limit", "iceberg", "stop-loss-limit", "take-profit-limit"):
            self._need(fields, 44)
            spec.price = parse_price(pair, fields[44], "Price (44)")
        if order_type in TRIGGER_TYPES:
            self._need(fields, 99)
            spec.trigger = parse_price(pair, fields[99], "StopPx (99)")
            if fields.get(388, "5") != "5":  # TriggerPriceType: 5 last; 1 index
                raise invalid("Index unavailable")
        if order_type == "iceberg":
            spec.display = parse_qty(pair, fields[1138], "DisplayQty (1138)")
        spec.post_only = "P" in inst
        tif = _TIF.get(fields.get(59, "1"))
        if tif is None:
            raise invalid("TimeInForce (59)")
        spec.tif = tif
        if tif == "gtd":
            self._need(fields, 126)
            spec.expire = _fix_expire(fields[126], now)
        stp = _STP.get(fields.get(7928, "1"))
        if stp is None:
            raise invalid("SelfTradePrevention (7928)")
        spec.stp = stp
        return spec

    def _target(self, fields: dict[int, str]) -> Order:
        """The order a cancel/status names: 37 wins over 41 (facts 5); own session only."""
        assert self.host is not None
        account = self.host.account
        if fields.get(37):
            order = account.orders.get(fields[37])
        elif fields.get(41):
            order = account.by_cl_ord_id.get(fields[41])
        else:
            raise MissingField(41)
        if order is None or order.session is not self.host:
            raise VenueError(E_UNKNOWN_ORDER)
        return order

    def _cancel(self, fields: dict[int, str], now: float) -> None:
        self._need(fields, 11, 54, 55, 60)
        order = self._target(fields)
        assert self.host is not None
        self.exchange.cancel_order(self.host.account, [order], ref=fields[11])

    def _replace(self, fields: dict[int, str], now: float) -> None:
        """An atomic amend: 41 finds the order and 37 must be its OrderID (facts 11)."""
        self._need(fields, 11, 37, 41, 54, 55, 60)
        assert self.host is not None
        account = self.host.account
        order = account.by_cl_ord_id.get(fields[41])
        if order is None or order.session is not self.host:
            raise VenueError(E_UNKNOWN_ORDER)
        pair = order.pair
        try:
            if order.txid != fields[37]:
                raise VenueError(f"{E_UNKNOWN_ORDER}:OrderID (37) is not the order OrigClOrdID "
                                 "(41) names", INVALID)  # fmt: skip
            qty = parse_qty(pair, fields[38], "OrderQty (38)") if fields.get(38) else None
            price = parse_price(pair, fields[44], "Price (44)") if fields.get(44) else None
            trigger = parse_price(pair, fields[99], "StopPx (99)") if fields.get(99) else None
            display = (parse_qty(pair, fields[1138], "DisplayQty (1138)")
                       if fields.get(1138) else None)  # fmt: skip
        except VenueError as exc:
            self.exchange.charge_refused(account, pair, ratelimit.AMEND_FIXED, exc)
        self.exchange.amend_order(
            account, order, qty=qty, price=price, trigger=trigger, display=display,
            post_only="P" in fields.get(18, ""), new_cl_ord_id=fields[11], ref=fields[11],
        )  # fmt: skip

    def _mass_cancel(self, fields: dict[int, str], now: float) -> None:
        self._need(fields, 11, 530)
        assert self.host is not None
        host = self.host
        kind = fields[530]
        orders = [o for o in host.account.orders.values() if kind == "7" or o.session is host]
        if kind == "1":
            self._need(fields, 55)
            pair = self.exchange.pair(fields[55])
            orders = [o for o in orders if o.pair is pair]
        elif kind not in ("6", "7"):
            raise invalid("MassCancelRequestType (530)")
        count = self.exchange.cancel_batch(host.account, orders, fields[11])
        host.session.send(
            fix.MASS_CANCEL_REPORT, [(11, fields[11]), (530, kind), (531, kind), (533, count)], now
        )

    def _status(self, fields: dict[int, str], now: float) -> None:
        order = self._target(fields)
        assert self.host is not None
        status = fix.STATUS_PARTIAL if order.filled else fix.STATUS_NEW
        body = execution_report(Event(EV_NEW, order), now).replace(
            f"150={fix.EXEC_NEW}\x0139={fix.STATUS_NEW}",
            f"150={fix.EXEC_ORDER_STATUS}\x0139={status}",
        )
        self.host.session.send(fix.EXECUTION_REPORT, body, now)


def _fix_expire(text: str, now: float) -> float:
    """ExpireTime (126), a UTCTimestamp, as wall-clock seconds: ahead, at most a month."""
    from datetime import UTC, datetime

    for fmt in (FIX_TIME_FORMAT, "%Y%m%d-%H:%M:%S"):
        try:
            at = datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
        if now < at <= now + 31 * 86400:
            return at
        break
    raise invalid("ExpireTime (126)")


def _reason_code(exc: VenueError) -> int:
    if exc.message.startswith(E_UNKNOWN_ORDER):
        return BR_UNKNOWN_ID
    if exc.message == E_UNKNOWN_PAIR:
        return BR_UNKNOWN_SECURITY
    return BR_OTHER  # rate limits and other business refusals (facts 5: 380=0, text in 58)


_ORDER_MESSAGES: Final = frozenset(
    "DFGq"
)  # what the venue counts as served (H, a status query, is not)
_APP_HANDLERS: Final = {
    "D": FixConnection._new_order,
    "F": FixConnection._cancel,
    "G": FixConnection._replace,
    "q": FixConnection._mass_cancel,
    "H": FixConnection._status,
}
