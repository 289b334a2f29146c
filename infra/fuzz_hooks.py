"""Schemathesis hooks of `infra/fuzz.sh` (loaded through `hooks` in schemathesis.toml).

Hypothesis shrinks the Idempotency-Key it generates toward the same few minimal strings ("0",
"00"...), so most writes carried a key some earlier request had used with another body, and the
server answered 422 IDEMPOTENCY_KEY_REUSED before any of its logic ran: Schemathesis warned that
the writes "mostly rejected generated data". A valid generated key is made unique here on three
requests in four (a counter, so the run stays deterministic); the fourth keeps the generated key,
so replays and reuse (200 with `Idempotent-Replayed`, 422) are still exercised. A key that is not
valid (negative data) is left as generated.
"""
import itertools
import re

import schemathesis

VALID_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
COUNTER = itertools.count()


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() != "idempotency-key":
            continue
        value = headers[name]
        n = next(COUNTER)
        if isinstance(value, str) and VALID_KEY.fullmatch(value) and n % 4 != 3:
            headers[name] = f"fuzz-{n}-{value}"[:128]
