"""REST signing and body codecs: the published vector, exact bytes both ways."""

from __future__ import annotations

import pytest

from loadgen.protocol import rest

# Facts file, section 1.2 (S1, Kraken's published example).
SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
BODY = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
SIGN = b"4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="


def test_published_signature_vector():
    secret = rest.decode_secret(SECRET)
    assert rest.sign(secret, b"/0/private/AddOrder", b"1616492376594", BODY) == SIGN
    assert rest.verify(secret, b"/0/private/AddOrder", b"1616492376594", BODY, SIGN)


@pytest.mark.parametrize(
    "tampered",
    [
        ("path", b"/0/private/CancelOrder", b"1616492376594", BODY),
        ("nonce", b"/0/private/AddOrder", b"1616492376595", BODY),
        ("body", b"/0/private/AddOrder", b"1616492376594", BODY.replace(b"1.25", b"1.26")),
    ],
)
def test_signature_covers_path_nonce_and_body(tampered):
    _, path, nonce, body = tampered
    assert not rest.verify(rest.decode_secret(SECRET), path, nonce, body, SIGN)


@pytest.mark.parametrize(
    ("fields", "wire"),
    [
        ({"nonce": 1, "pair": "XBTUSD"}, b"nonce=1&pair=XBTUSD"),
        ({"cl_ord_id": "a b/c"}, b"cl_ord_id=a%20b%2Fc"),
        ({"validate": True}, b"validate=true"),
        (
            {"orders": [{"type": "buy", "price": "1"}, {"type": "sell", "price": "2"}]},
            b"orders%5B0%5D%5Btype%5D=buy&orders%5B0%5D%5Bprice%5D=1"
            b"&orders%5B1%5D%5Btype%5D=sell&orders%5B1%5D%5Bprice%5D=2",
        ),
    ],
)
def test_form_encoding_both_ways(fields, wire):
    """Each row: fields encode to exactly these bytes, and those bytes decode back."""
    assert rest.encode_form(fields) == wire
    decoded = rest.decode_form(wire)
    expected = {
        k: (v if isinstance(v, list) else str(v).lower() if v is True else str(v))
        for k, v in fields.items()
    }
    assert decoded == expected


@pytest.mark.parametrize(
    "value",
    ["60000.1", "XBTUSD", "a-b_c.d~e", "", "a b", "a+b", "a\n", "a/b", "é", "100%", "x=y&z", -1.5],
)
def test_a_value_is_quoted_as_urllib_quotes_it(value):
    """The plain-value shortcut leaves a value as quote() would, and quotes the rest."""
    from urllib.parse import quote

    assert rest.encode_form({"k": value}) == f"k={quote(str(value), safe='')}".encode()


def test_unescaped_brackets_decode_to_lists():
    body = b"orders[0][txid]=A&orders[1][txid]=B&cl_ord_ids[0][cl_ord_id]=x"
    assert rest.decode_form(body) == {
        "orders": [{"txid": "A"}, {"txid": "B"}],
        "cl_ord_ids": [{"cl_ord_id": "x"}],
    }


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"novalue", None),
        (b"\xff=1", None),
        (b"{not json", b"application/json"),
        (b"[1, 2]", b"application/json; charset=utf-8"),
        (b"a=1&a[0]=2", None),
    ],
)
def test_bad_bodies_raise_protocol_error(body, ctype):
    with pytest.raises(rest.RestProtocolError):
        rest.decode_body(body, ctype)


def test_envelope():
    assert rest.ok({"count": 1}) == b'{"error":[],"result":{"count":1}}'
    assert rest.error("EOrder:Unknown order") == b'{"error":["EOrder:Unknown order"]}'
    assert rest.parse_reply(b'{"error":["EAPI:Invalid nonce"]}') == (["EAPI:Invalid nonce"], None)
    with pytest.raises(rest.RestProtocolError):
        rest.parse_reply(b'{"result":1}')


def test_keyed_signer_gives_the_same_signature_every_time():
    signer = rest.keyed(rest.decode_secret(SECRET))
    for _ in range(3):  # copying must leave the keyed original untouched
        assert rest.sign(signer, b"/0/private/AddOrder", b"1616492376594", BODY) == SIGN


@pytest.mark.parametrize("key_size", [0, 1, 64, 127, 128, 129, 300])
def test_keyed_hmac_equals_the_standard_library_for_every_key_size(key_size):
    """RFC 2104 edge: keys longer than the 128-byte block are hashed first."""
    import hashlib
    import hmac as std_hmac

    key = bytes(range(256))[:key_size] * (1 + key_size // 256)
    key = key[:key_size]
    for message in (b"", b"abc", b"x" * 500):
        expected = std_hmac.new(key, message, hashlib.sha512).digest()
        assert rest.KeyedHmac(key).digest(message) == expected
