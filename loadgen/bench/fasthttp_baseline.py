"""Baseline locustfile for `loadgen bench traders`: stock Locust FastHttpUser sending signed
AddOrder/CancelOrder to the venue, written the way a Locust user would (issue 3's yardstick).
"""

import base64
import hashlib
import hmac
import itertools
import time

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

from loadgen.keys import DEFAULT_SEED, derive_key

_users = itertools.count()


class SignedTrader(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.key, secret = derive_key(DEFAULT_SEED, next(_users))
        self.secret = base64.b64decode(secret)
        self.n = 0

    def call(self, method: str, fields: str) -> None:
        path = f"/0/private/{method}"
        self.n += 1
        nonce = str(time.time_ns() // 1000 + self.n)
        body = f"nonce={nonce}&{fields}"
        digest = hashlib.sha256((nonce + body).encode()).digest()
        sign = base64.b64encode(
            hmac.new(self.secret, path.encode() + digest, hashlib.sha512).digest()
        )
        headers = {
            "API-Key": self.key,
            "API-Sign": sign.decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        with self.client.post(
            path, data=body, headers=headers, name=method, catch_response=True
        ) as reply:
            errors = reply.json()["error"]
            if errors:
                reply.failure(errors[0])

    @task
    def add_cancel(self) -> None:
        cl_ord_id = f"f{self.n}"
        self.call(
            "AddOrder",
            "pair=XBTUSD&type=buy&ordertype=limit&price=30000.0"
            f"&volume=0.0001&cl_ord_id={cl_ord_id}",
        )
        self.call("CancelOrder", f"cl_ord_id={cl_ord_id}")
