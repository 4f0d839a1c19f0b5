"""REST against the real venue over loopback, with an independent HTTP client and signer."""

from __future__ import annotations

import socket
import time
import urllib.parse

import pytest

from tests.clients import Rest, wait_until

PAIR = "XBTUSD"


def ok(reply: dict) -> dict:
    assert reply["error"] == [], reply
    return reply["result"]


def err(reply: dict) -> str:
    assert "result" not in reply and len(reply["error"]) == 1, reply
    return reply["error"][0]


def add(
    client: Rest,
    side: str = "buy",
    price: str = "50000.0",
    volume: str = "0.01",
    pair: str = PAIR,
    **extra: object,
) -> str:
    result = ok(
        client.private(
            "AddOrder", pair=pair, type=side, ordertype="limit", price=price, volume=volume, **extra
        )
    )
    return result["txid"][0]


def open_ids(client: Rest) -> set[str]:
    return set(ok(client.private("OpenOrders"))["open"])


# ---- public -------------------------------------------------------------------------------------


def test_public_time_and_status(rest):
    client = rest()
    now = client.public("Time")["result"]["unixtime"]
    assert abs(now - time.time()) < 5
    assert client.public("SystemStatus")["result"]["status"] == "online"
    pairs = client.public("AssetPairs")["result"]
    xbt = pairs["XXBTZUSD"]  # Kraken's key, names and asset IDs (facts 7.1)
    assert (xbt["altname"], xbt["wsname"], xbt["base"], xbt["quote"]) == (
        "XBTUSD", "XBT/USD", "XXBT", "ZUSD")  # fmt: skip


# ---- every private operation ----------------------------------------------------------------------


def test_add_order_rests_and_is_listed(rest):
    client = rest()
    result = ok(
        client.private(
            "AddOrder", pair=PAIR, type="buy", ordertype="limit", price="40000.5", volume="1.25"
        )
    )
    txid = result["txid"][0]
    assert len(txid) == 19 and txid[6] == "-" and txid[12] == "-"
    assert result["descr"]["order"] == "buy 1.25000000 XBTUSD @ limit 40000.5"
    info = ok(client.private("OpenOrders"))["open"][txid]
    assert info["vol"] == "1.25000000" and info["descr"]["price"] == "40000.5"


def test_add_order_json_body_is_accepted(rest):
    client = rest()
    result = ok(
        client.private(
            "AddOrder",
            as_json=True,
            pair="BTC/USD",
            type="sell",
            ordertype="limit",
            price="90000",
            volume="0.5",
        )
    )
    assert result["txid"][0] in open_ids(client)


def test_validate_only_places_nothing(rest):
    client = rest()
    result = ok(
        client.private(
            "AddOrder",
            pair=PAIR,
            type="buy",
            ordertype="limit",
            price="40000",
            volume="1",
            validate="true",
        )
    )
    assert "txid" not in result and open_ids(client) == set()


def test_amend_in_place_keeps_txid(rest):
    client = rest()
    txid = add(client, cl_ord_id="amend-me")
    result = ok(client.private("AmendOrder", txid=txid, order_qty="0.005", limit_price="49999"))
    assert len(result["amend_id"]) == 19
    info = ok(client.private("OpenOrders"))["open"][txid]
    assert info["vol"] == "0.00500000" and info["descr"]["price"] == "49999.0"
    ok(client.private("AmendOrder", cl_ord_id="amend-me", order_qty="0.004"))
    assert ok(client.private("OpenOrders"))["open"][txid]["vol"] == "0.00400000"


def test_edit_replaces_with_new_txid(rest):
    client = rest()
    txid = add(client, userref="77")
    result = ok(client.private("EditOrder", txid=txid, pair=PAIR, volume="0.02", price="48000"))
    assert result["originaltxid"] == txid and result["txid"] != txid
    assert result["descr"]["order"] == "buy 0.02000000 XBTUSD @ limit 48000.0"
    assert open_ids(client) == {result["txid"]}


def test_cancel_by_txid_cl_ord_id_and_userref(rest):
    client = rest()
    a = add(client)
    add(client, cl_ord_id="c-1")
    add(client, userref="5")
    add(client, userref="5")
    assert ok(client.private("CancelOrder", txid=a)) == {"count": 1, "pending": False}
    assert ok(client.private("CancelOrder", cl_ord_id="c-1"))["count"] == 1
    assert ok(client.private("CancelOrder", txid="5"))["count"] == 2
    assert open_ids(client) == set()


def test_cancel_all(rest):
    client = rest()
    for _ in range(3):
        add(client)
    assert ok(client.private("CancelAll"))["count"] == 3
    assert open_ids(client) == set()


def test_batch_add_and_batch_cancel(rest):
    client = rest()
    orders = [
        {"ordertype": "limit", "type": "buy", "volume": "0.01", "price": str(40000 + i)}
        for i in range(4)
    ]
    result = ok(client.private("AddOrderBatch", pair=PAIR, orders=orders))
    txids = [o["txid"] for o in result["orders"]]
    assert len(set(txids)) == 4 and set(txids) == open_ids(client)
    cancelled = ok(client.private("CancelOrderBatch", orders=[{"txid": t} for t in txids[:3]]))
    assert cancelled == {"count": 3}
    assert open_ids(client) == {txids[3]}


def test_batch_add_json_with_a_failing_order(rest):
    client = rest()
    orders = [
        {"ordertype": "limit", "type": "buy", "volume": "0.01", "price": "40000"},
        {"ordertype": "limit", "type": "buy", "volume": "0.00001", "price": "40000"},
    ]
    result = ok(client.private("AddOrderBatch", as_json=True, pair=PAIR, orders=orders))
    assert "txid" in result["orders"][0]
    assert result["orders"][1] == {"error": "EOrder:Order minimum not met"}


def test_cancel_all_orders_after_fires(rest, open_count):
    client = rest()
    add(client)
    result = ok(client.private("CancelAllOrdersAfter", timeout="1"))
    assert result["triggerTime"] > result["currentTime"]
    assert wait_until(lambda: open_count(client.api_key) == 0)


def test_cancel_all_orders_after_zero_disarms(venue, rest, open_count):
    client = rest()
    add(client)
    ok(client.private("CancelAllOrdersAfter", timeout="1"))
    ok(client.private("CancelAllOrdersAfter", timeout="0"))
    account = venue.venue.accounts.get(client.api_key)
    assert venue.call(lambda: account.dead_man is None and account.dead_man_at == 0.0)
    assert open_count(client.api_key) == 1


def test_websockets_token(rest):
    result = ok(rest().private("GetWebSocketsToken"))
    assert result["expires"] == 900 and len(result["token"]) >= 32


# ---- fills ----------------------------------------------------------------------------------------


def test_crossing_orders_fill_price_time_priority(rest, fresh_pair):
    pair = fresh_pair()
    maker1, maker2, taker = rest(), rest(), rest()
    add(maker1, "sell", price="10.0", volume="3", pair=pair)
    second = add(maker2, "sell", price="10.0", volume="3", pair=pair)
    ok(
        taker.private(
            "AddOrder", pair=pair, type="buy", ordertype="limit", price="10.0", volume="4"
        )
    )
    assert open_ids(taker) == set()  # fully filled
    assert open_ids(maker1) == set()  # first in time, filled first
    rest_of_second = ok(maker2.private("OpenOrders"))["open"][second]
    assert rest_of_second["vol_exec"] == "1.00000000"


def test_taker_rests_its_remainder_at_its_limit(rest, fresh_pair):
    pair = fresh_pair()
    maker, taker = rest(), rest()
    add(maker, "sell", price="10.0", volume="2", pair=pair)
    txid = add(taker, "buy", price="10.5", volume="5", pair=pair)
    info = ok(taker.private("OpenOrders"))["open"][txid]
    assert info["vol_exec"] == "2.00000000" and info["price"] == "10.0000"


def test_market_order_fills_and_never_rests(rest, fresh_pair):
    pair = fresh_pair()
    maker, taker = rest(), rest()
    add(maker, "sell", price="12.0", volume="1", pair=pair)
    result = ok(taker.private("AddOrder", pair=pair, type="buy", ordertype="market", volume="2.5"))
    assert result["descr"]["order"] == f"buy 2.50000000 {pair} @ market"
    assert open_ids(taker) == set() and open_ids(maker) == set()


def test_self_trade_prevention_cancels_the_newest(rest, fresh_pair):
    pair = fresh_pair()
    client = rest()
    resting = add(client, "sell", price="10.0", volume="2", pair=pair)
    add(client, "buy", price="10.0", volume="2", pair=pair)
    assert open_ids(client) == {resting}


def test_amend_keeps_queue_priority_on_size_down(rest, fresh_pair):
    pair = fresh_pair()
    a, b, taker = rest(), rest(), rest()
    first = add(a, "sell", price="10.0", volume="2", pair=pair)
    add(b, "sell", price="10.0", volume="2", pair=pair)
    ok(a.private("AmendOrder", txid=first, order_qty="1"))  # smaller: keeps its place
    ok(
        taker.private(
            "AddOrder", pair=pair, type="buy", ordertype="limit", price="10.0", volume="1"
        )
    )
    assert open_ids(a) == set()


def test_amend_price_change_loses_priority(rest, fresh_pair):
    pair = fresh_pair()
    a, b, taker = rest(), rest(), rest()
    first = add(a, "sell", price="10.0", volume="2", pair=pair)
    add(b, "sell", price="10.0001", volume="2", pair=pair)
    ok(a.private("AmendOrder", txid=first, limit_price="10.0001"))  # now behind b
    ok(
        taker.private(
            "AddOrder", pair=pair, type="buy", ordertype="limit", price="10.0001", volume="2"
        )
    )
    assert open_ids(b) == set() and open_ids(a) == {first}


def test_post_only_that_would_take_is_cancelled(rest, fresh_pair):
    pair = fresh_pair()
    maker, poster = rest(), rest()
    add(maker, "sell", price="10.0", volume="2", pair=pair)
    add(poster, "buy", price="10.0", volume="2", pair=pair, oflags="post")
    assert open_ids(poster) == set() and len(open_ids(maker)) == 1


# ---- refusals with Kraken's strings ---------------------------------------------------------------


def test_unknown_order(rest):
    assert err(rest().private("CancelOrder", txid="OAAAAA-BBBBB-CCCCCC")) == "EOrder:Unknown order"


def test_other_keys_orders_are_untouchable(rest):
    owner, stranger = rest(), rest()
    txid = add(owner)
    assert err(stranger.private("CancelOrder", txid=txid)) == "EOrder:Unknown order"
    assert err(stranger.private("AmendOrder", txid=txid, order_qty="1")) == "EOrder:Unknown order"
    assert open_ids(owner) == {txid}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"pair": "NOPE"}, "EQuery:Unknown asset pair"),
        ({"volume": "0.00001"}, "EOrder:Order minimum not met"),
        ({"volume": "1000"}, "EOrder:Insufficient funds"),
        ({"price": "0"}, "EOrder:Invalid price"),
        # a leading sign is Kraken's relative price (last trade - 1): refused by name
        (
            {"price": "-1"},
            "EGeneral:Invalid arguments:price '-1' (relative prices are not "
            "served by the embedded venue)",
        ),
        (
            {"price": "50000.123"},
            "EOrder:Invalid price:XBTUSD price can only be specified up to 1 decimals",
        ),
        ({"type": "hold"}, "EGeneral:Invalid arguments:type"),
        ({"ordertype": "magic"}, "EGeneral:Invalid arguments:ordertype"),
        ({"volume": "lots"}, "EGeneral:Invalid arguments:volume"),
        ({"userref": "x"}, "EGeneral:Invalid arguments:userref"),
        # values float() accepts but an order cannot carry
        ({"volume": "nan"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "inf"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "-1"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "0.000000001"}, "EGeneral:Invalid arguments:volume"),
        ({"price": "nan"}, "EOrder:Invalid price"),
        ({"price": "0"}, "EOrder:Invalid price"),
        ({"price": "1e400"}, "EOrder:Invalid price"),
    ],
)
def test_add_order_refusals(rest, fields, error):
    params = {
        "pair": PAIR,
        "type": "buy",
        "ordertype": "limit",
        "price": "50000",
        "volume": "0.01",
        **fields,
    }
    assert err(rest().private("AddOrder", **params)) == error


def test_orders_limit_exceeded(rest):
    client = rest(tier="starter")  # 60 open orders per pair
    orders = [{"ordertype": "limit", "type": "buy", "volume": "0.01", "price": "30000"}] * 15
    for _ in range(4):
        ok(
            client.private(
                "AddOrderBatch",
                pair="ETHUSD",
                orders=[{**o, "volume": "0.01", "price": "1000"} for o in orders],
            )
        )
    assert (
        err(
            client.private(
                "AddOrder",
                pair="ETHUSD",
                type="buy",
                ordertype="limit",
                price="1000",
                volume="0.01",
            )
        )
        == "EOrder:Orders limit exceeded"
    )


def test_invalid_key(venue):
    client = Rest(venue.endpoints["rest"], "NOSUCHKEY", "c2VjcmV0")
    assert err(client.private("OpenOrders")) == "EAPI:Invalid key"


def test_invalid_signature(rest):
    client = rest()
    wrong = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"
    assert err(client.private("OpenOrders", sign_with=wrong)) == "EAPI:Invalid signature"


def test_replayed_nonce(rest):
    client = rest()
    nonce = int(time.time() * 1000) * 1000 + 999_999_999
    ok(client.private("OpenOrders", nonce=nonce))
    assert err(client.private("OpenOrders", nonce=nonce)) == "EAPI:Invalid nonce"
    assert err(client.private("OpenOrders", nonce=nonce - 1)) == "EAPI:Invalid nonce"


def test_signature_over_tampered_body_fails(venue, rest):
    """A body changed after signing (same nonce) must not pass."""
    client = rest()
    body = b"nonce=1&pair=XBTUSD"
    from tests.clients import kraken_sign

    sig = kraken_sign(client.secret, "/0/private/OpenOrders", "1", body)
    status, reply = client.raw(
        "POST",
        "/0/private/OpenOrders",
        body + b"&x=1",
        {"API-Key": client.api_key, "API-Sign": sig},
    )
    assert status == 200 and reply["error"] == ["EAPI:Invalid signature"]


# ---- bad input ------------------------------------------------------------------------------------


def raw_exchange(venue, payload: bytes) -> bytes:
    url = urllib.parse.urlsplit(venue.endpoints["rest"])
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def test_garbage_http_gets_400_and_close(venue, rest):
    reply = raw_exchange(venue, b"\x00\x01GARBAGE\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400")
    assert rest().public("Time")["error"] == []  # others unaffected


def test_oversized_body_gets_413(venue):
    reply = raw_exchange(
        venue,
        b"POST /0/private/AddOrder HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 10000000\r\n\r\n" + b"a" * 1000,
    )
    assert reply.startswith(b"HTTP/1.1 413")


def test_unknown_method_and_path(rest):
    client = rest()
    status, reply = client.raw("POST", "/0/private/Teleport", b"nonce=1")
    assert status == 404 and reply == {"error": ["EGeneral:Unknown method"]}
    status, reply = client.raw("GET", "/nowhere")
    assert status == 404


def test_private_call_with_get_is_refused(rest):
    status, _ = rest().raw("GET", "/0/private/OpenOrders")
    assert status == 405


def test_malformed_json_body(rest):
    client = rest()
    body = b'{"nonce": "12", "pair": '
    from tests.clients import kraken_sign

    sig = kraken_sign(client.secret, "/0/private/AddOrder", "12", body)
    status, reply = client.raw(
        "POST",
        "/0/private/AddOrder",
        body,
        {"API-Key": client.api_key, "API-Sign": sig, "Content-Type": "application/json"},
    )
    assert status == 200 and reply["error"][0].startswith("EGeneral:Invalid arguments")


def test_wrong_types_in_json(rest):
    client = rest()
    reply = client.private(
        "AddOrder",
        as_json=True,
        pair=PAIR,
        type="buy",
        ordertype="limit",
        price={"x": 1},
        volume=[1],
    )
    assert err(reply) == "EGeneral:Invalid arguments:volume"
    reply = client.private(
        "AddOrder", as_json=True, pair=12, type="buy", ordertype="limit", price="1", volume="1"
    )
    assert err(reply) == "EQuery:Unknown asset pair"


def test_pipelined_requests_answered_in_order(venue):
    one = b"GET /0/public/Time HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /0/public/SystemStatus HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = raw_exchange(venue, one * 3 + last)
    assert reply.count(b"HTTP/1.1 200") == 4
    assert reply.rindex(b"unixtime") < reply.index(b'"status":"online"')


def test_json_booleans_are_not_quantities(rest):
    reply = rest().private(
        "AddOrder",
        as_json=True,
        pair=PAIR,
        type="buy",
        ordertype="limit",
        price="50000",
        volume=True,
    )
    assert err(reply) == "EGeneral:Invalid arguments:volume"


def test_refused_edit_leaves_the_original_order(rest):
    client = rest()
    txid = add(client, price="50000", volume="0.01")
    reply = client.private("EditOrder", txid=txid, pair=PAIR, volume="1000")  # over the cap
    assert err(reply) == "EOrder:Insufficient funds"
    info = ok(client.private("OpenOrders"))["open"]
    assert list(info) == [txid] and info[txid]["vol"] == "0.01000000"


def rfc3339_in(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(time.time() + seconds, UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("offset", "error"),
    [(-1.0, "EService:Deadline elapsed"), (120.0, "EGeneral:Invalid arguments:deadline")],
)
def test_deadline(rest, offset, error):
    client = rest()

    def add_by(deadline: str) -> dict:
        return client.private(
            "AddOrder",
            pair=PAIR,
            type="buy",
            ordertype="limit",
            price="50000",
            volume="0.01",
            deadline=deadline,
        )

    assert err(add_by(rfc3339_in(offset))) == error
    ok(add_by(rfc3339_in(10)))
    assert err(add_by("soon")) == "EGeneral:Invalid arguments:deadline"


def test_batch_cancel_skips_orders_already_gone(rest):
    client = rest()
    live = add(client)
    gone = add(client)
    ok(client.private("CancelOrder", txid=gone))
    reply = client.private("CancelOrderBatch", orders=[{"txid": gone}, {"txid": live}])
    assert ok(reply) == {"count": 1} and open_ids(client) == set()
    reply = client.private("CancelOrderBatch", orders=[{"txid": gone}, {"txid": live}])
    assert err(reply) == "EOrder:Unknown order"  # nothing left to cancel


@pytest.mark.parametrize("nonce", ["\u00b2", "9" * 50, str(2**64)],
                         ids=["unicode digit", "50 nines", "2**64"])  # fmt: skip
def test_a_nonce_that_is_no_64_bit_number_is_refused_and_the_key_still_works(rest, nonce):
    """Issue 13: "²" reached int() (an internal error); 50 nines were accepted and locked the
    key for the life of the venue (no later nonce could be higher)."""
    client = rest()
    assert client.private("OpenOrders", nonce=nonce)["error"] == ["EAPI:Invalid nonce"]
    assert client.private("OpenOrders")["error"] == []


# ---- issue 13: hostile bodies get named errors, never an internal error ---------------------


def signed_raw(client: Rest, path: str, body: bytes, *, sign: bool = True, nonce: str = "") -> dict:
    from tests.clients import kraken_sign

    sig = kraken_sign(client.secret, path, nonce, body) if sign else "AAAA"
    status, reply = client.raw(
        "POST",
        path,
        body,
        {"API-Key": client.api_key, "API-Sign": sig,
         "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert status == 200, (status, reply)
    return reply


def test_a_deeply_nested_form_key_with_a_junk_signature_is_refused_unparsed(venue, rest):
    """Issue 13's freeze: a known key, a junk API-Sign and a key nested ~1,100 deep raised a
    RecursionError while the body was parsed before the signature was checked."""
    client = rest()
    body = b"nonce=1&a" + b"[x]" * 1100 + b"=1"
    for _ in range(3):
        assert signed_raw(client, "/0/private/AddOrder", body, sign=False) == {
            "error": ["EAPI:Invalid signature"]
        }
    assert client.private("OpenOrders")["error"] == []


def test_a_deeply_nested_form_key_with_a_good_signature_gets_a_named_refusal(rest):
    client = rest()
    nonce = str(time.time_ns())
    body = f"nonce={nonce}&a".encode() + b"[x]" * 1100 + b"=1"
    reply = signed_raw(client, "/0/private/AddOrder", body, nonce=nonce)
    assert reply["error"][0].startswith("EGeneral:Invalid arguments:form field"), reply
    assert "nested deeper" in reply["error"][0]


@pytest.mark.parametrize("index", ["%C2%B2", "%D9%A3", "99999999"])
def test_a_batch_index_that_is_no_small_ascii_number_is_invalid_orders(rest, index):
    """`orders[²]`: "²".isdigit() is True and int("²") raised (an internal error)."""
    client = rest()
    nonce = str(time.time_ns())
    body = (
        f"nonce={nonce}&pair={PAIR}&orders%5B{index}%5D%5Btype%5D=buy&orders%5B0%5D%5Btype%5D=buy"
    ).encode()
    reply = signed_raw(client, "/0/private/AddOrderBatch", body, nonce=nonce)
    assert reply["error"] and not any("Internal" in e for e in reply["error"]), reply
    assert reply["error"][0].startswith(("EGeneral:Invalid arguments", "EQuery:")), reply


def test_too_many_form_fields_are_refused_by_count(rest):
    client = rest()
    nonce = str(time.time_ns())
    body = f"nonce={nonce}&".encode() + b"&".join(b"f%d=1" % i for i in range(2000))
    reply = signed_raw(client, "/0/private/AddOrder", body, nonce=nonce)
    assert reply["error"] == ["EGeneral:Invalid arguments:more than 1024 form fields"]


@pytest.mark.parametrize("userref", [1.5, 2**70, "1" * 30, "\u00b2", True])
def test_an_integer_field_out_of_range_or_not_integral_is_invalid(rest, userref):
    reply = rest().private(
        "AddOrder", as_json=True, pair=PAIR, type="buy", ordertype="limit",
        price="50000.0", volume="0.01", userref=userref,
    )  # fmt: skip
    assert err(reply) == "EGeneral:Invalid arguments:userref"


def test_huge_json_numbers_are_malformed_json_not_an_internal_error(rest):
    client = rest()
    from tests.clients import kraken_sign

    body = b'{"nonce": "5", "volume": 1e400}'
    sig = kraken_sign(client.secret, "/0/private/AddOrder", "5", body)
    status, reply = client.raw(
        "POST", "/0/private/AddOrder", body,
        {"API-Key": client.api_key, "API-Sign": sig, "Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 200 and reply == {"error": ["EGeneral:Invalid arguments:malformed JSON body"]}


def test_bytes_after_connection_close_are_not_read(venue):
    """`Connection: close` then more requests: the venue wrote replies after write_eof
    ("Fatal error on transport"); now it answers the first and reads no further."""
    first = b"GET /0/public/Time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    more = b"GET /0/public/SystemStatus HTTP/1.1\r\nHost: x\r\n\r\n" * 5
    reply = raw_exchange(venue, first + more)
    assert reply.count(b"HTTP/1.1 200") == 1 and b"unixtime" in reply


def test_a_json_body_nested_deeper_than_8_is_refused_by_name(rest):
    """Found by `loadgen fuzz`: a 1,000-deep txid reached str() and raised RecursionError."""
    client = rest()
    reply = client.private("CancelOrder", as_json=True, txid=[[[[[[[[[["x"]]]]]]]]]])
    assert reply == {
        "error": ["EGeneral:Invalid arguments:JSON body nested deeper than 8 or over 1024 brackets"]
    }
    nested_ok = client.private("CancelOrder", as_json=True, txid=[["x"]])
    assert "Internal" not in str(nested_ok)


@pytest.mark.parametrize("head", [b"GET /" + b"a" * 200_000, b"GET / HTTP/1.1\r\nX: " + b"a" * 200_000],
                         ids=["endless URL", "endless header"])  # fmt: skip
def test_a_request_line_or_header_that_never_ends_gets_431_not_unbounded_memory(venue, head):
    """Found in review: httptools gathers a URL or header value until it ends, and the 16 KiB
    bound was checked only on complete headers: a peer could grow the venue without limit."""
    reply = raw_exchange(venue, head)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]


def test_a_peer_that_asks_without_reading_is_not_read_until_it_reads(venue):
    """Found in review: with no backpressure a peer that pipelines requests and never reads
    the answers grew the venue's write buffer without bound. Now the venue stops reading it
    once its buffer passes the high-water mark."""
    import threading

    url = urllib.parse.urlsplit(venue.endpoints["rest"])
    request = b"GET /0/public/Time HTTP/1.1\r\nHost: x\r\n\r\n"
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sent = [0]

    def flood() -> None:
        try:
            for _ in range(2000):  # ~80 MB of answers if all were read and answered
                sock.sendall(request * 1000)
                sent[0] += 1
        except OSError:
            pass

    sender = threading.Thread(target=flood, daemon=True)
    sender.start()

    def buffered() -> int:
        conns = [c for c in venue.venue.connections if c.protocol_name == "rest" and c.transport]
        return max((c.transport.get_write_buffer_size() for c in conns), default=0)

    deadline = time.monotonic() + 3
    peak = 0
    while time.monotonic() < deadline:
        peak = max(peak, venue.call(buffered))
        time.sleep(0.05)  # sampling the buffer over a fixed span: nothing to wait for
    assert peak < 8 * 1024 * 1024, peak  # unheld, it grew ~15 MB/s here
    sock.shutdown(socket.SHUT_RDWR)  # unblocks the sender
    sock.close()
    sender.join(timeout=10)
