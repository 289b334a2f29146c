"""Schemathesis hooks of `infra/fuzz.sh` (loaded through `hooks` in schemathesis.toml): they make
the generated requests reach the service's logic, not only its validation.

Left alone, almost every schema-valid write was refused before any logic ran, and Schemathesis
warned that they "mostly rejected generated data":
- Hypothesis shrinks the Idempotency-Key toward the same few minimal strings, so most keyed writes
  reused a key some earlier request had used with another body (422 IDEMPOTENCY_KEY_REUSED);
- random skus and locations name no stock item (404), so no reservation was ever made, and the
  stateful phase had no reservation to confirm, extend or release through its links.

So (on positive cases only, but for the keys, which negative cases get unique too: their data is
otherwise left exactly as generated), and deterministically
(counters, one per operation for which requests are steered; `--generation-deterministic` and one
worker keep the run reproducible):
- a valid Idempotency-Key is made unique on seven requests in eight; the eighth keeps its key, so
  replays and reuse are still exercised;
- every other reservation request or adjustment names the stock `dev-server --seed` creates (one
  unit a line, held at least ten minutes, for a fresh order, through its channel `web-shop` when
  a channel is named),
  and a stock batch names distinct items with exactly one of onHand / delta;
- every other request on a reservation names a PENDING one the run has made (`after_call` keeps
  their ids, and forgets one once confirmed or released), an extension within the hold's lifetime,
  and every other read of an item's lists names a seeded item (of an order's history, an order the
  run made), without a made-up `cursor` (a cursor the server did not give is 400 by contract; an
  order's history never gets one);
- the demo channel `web-shop` is never redefined (a PUT of it goes to another channel id);
- a kit's components are made distinct and never the kit itself (two rules its schema leaves out),
  and every other put of a kit defines a new one.
"""
import collections
import itertools
import re

import schemathesis
from schemathesis.generation import GenerationMode

VALID_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# dev-server --seed's demo stock (dev-server/src/main.rs, DEMO_STOCK), the items with units.
SEEDED = [("MUG-LOGO", "berlin"), ("MUG-LOGO", "paris"), ("TSHIRT-RED-M", "berlin"), ("TSHIRT-RED-M", "paris")]
KEYS = itertools.count()
# Per operation, so that which requests of one operation are steered does not hang on how many
# requests of the others came before (a new parameter elsewhere would shift them all).
STEER = collections.defaultdict(itertools.count)
PICK = itertools.count()
RESERVATION_ROUTES = {"POST /v1/reservations", "PUT /v1/orders/{orderId}/reservation"}
ON_A_RESERVATION = {
    "GET /v1/reservations/{reservationId}",
    "POST /v1/reservations/{reservationId}/confirm",
    "POST /v1/reservations/{reservationId}/extend",
    "POST /v1/reservations/{reservationId}/release",
}
ITEM_LISTS = {"GET /v1/stock/{sku}/{locationId}/holds", "GET /v1/stock/{sku}/{locationId}/movements"}
MADE = []
# Orders the run made a reservation for (their history is listed).
ORDERS = []


def positive(case):
    meta = getattr(case, "_meta", None)
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


def unique_keys(case):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() != "idempotency-key":
            continue
        value, n = headers[name], next(KEYS)
        if isinstance(value, str) and VALID_KEY.fullmatch(value) and n % 8 != 7:
            headers[name] = f"fuzz-{n}-{value}"[:128]


def seeded_lines(body):
    lines = body.get("lines") if isinstance(body, dict) else None
    if not isinstance(lines, list):
        return
    if isinstance(body.get("ttlSeconds"), int) and body["ttlSeconds"] < 600:
        body["ttlSeconds"] = 600
    for i, line in enumerate(lines):
        if not isinstance(line, dict):
            continue
        sku, location = SEEDED[i % len(SEEDED)]
        line["sku"] = sku
        line["quantity"] = 1
        if "locationId" in line:
            line["locationId"] = location
            line.pop("locations", None)
        elif "locations" in line:
            line["locations"] = ["berlin", "paris"]


def seeded_batch(body):
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        item["sku"], item["locationId"] = (SEEDED[i] if i < len(SEEDED) else (f"FUZZ-{i}", "berlin"))
        if "onHand" in item and "delta" in item:
            del item["delta"]
        elif "onHand" not in item and "delta" not in item:
            item["delta"] = 1


def distinct_components(case):
    """A kit's components by the two rules its schema leaves out: distinct skus, and not the kit."""
    components = case.body.get("components") if isinstance(case.body, dict) else None
    kit = (case.path_parameters or {}).get("sku")
    if not isinstance(components, list):
        return
    seen = set()
    for i, component in enumerate(components):
        if isinstance(component, dict) and isinstance(component.get("sku"), str):
            if component["sku"] == kit or component["sku"] in seen:
                component["sku"] = f"fuzz-part-{i}"
            seen.add(component["sku"])


@schemathesis.hook
def before_call(context, case, kwargs):
    # Negative cases too: an invalid request with a key used before would be 422 (the key's) before
    # its own 400, and never reach the validation it is made to test.
    unique_keys(case)
    route = f"{case.method.upper()} {case.operation.path}"
    # The demo channel the steered reservations go through stays as seeded (the stateful phase
    # would otherwise reuse its id, seen in answers, to redefine it).
    if route == "PUT /v1/channels/{channelId}" and (case.path_parameters or {}).get("channelId") == "web-shop":
        case.path_parameters["channelId"] = f"fuzz-channel-{next(PICK)}"
    if not positive(case):
        return
    if route == "GET /v1/orders/{orderId}/reservations" and case.query:
        case.query.pop("cursor", None)
    # A made-up channel is 404 before any logic: every positive reservation request that names a
    # channel names the demo one.
    if route in RESERVATION_ROUTES and isinstance(case.body, dict) and "channelId" in case.body:
        case.body["channelId"] = "web-shop"
    if route == "PUT /v1/kits/{sku}":
        distinct_components(case)
    if next(STEER[route]) % 2:
        return

    if route in RESERVATION_ROUTES:
        seeded_lines(case.body)
        if case.path_parameters and "orderId" in case.path_parameters:
            case.path_parameters["orderId"] = f"fuzz-order-{next(PICK)}"
        # A fresh order: the coverage phase's few boundary orderIds would otherwise be taken by
        # their first reservation, and every later request for them refused (409).
        if isinstance(case.body, dict) and "orderId" in case.body:
            case.body["orderId"] = f"fuzz-order-{next(PICK)}"
    elif route == "POST /v1/stock/batch":
        seeded_batch(case.body)
    elif route in ON_A_RESERVATION and MADE and case.path_parameters:
        case.path_parameters["reservationId"] = MADE[next(PICK) % len(MADE)]
        # An extension within the hold's lifetime (MAX_HOLD_SECONDS from its creation), so it
        # reaches the extension rather than HOLD_LIFETIME_EXCEEDED.
        if isinstance(case.body, dict) and isinstance(case.body.get("ttlSeconds"), int):
            case.body["ttlSeconds"] = min(case.body["ttlSeconds"], 3600)
    elif route in ITEM_LISTS and case.path_parameters:
        case.path_parameters["sku"], case.path_parameters["locationId"] = SEEDED[0]
        if case.query:
            case.query.pop("cursor", None)
    elif route == "PUT /v1/kits/{sku}" and case.path_parameters:
        # A fresh kit: the coverage phase's few boundary skus are soon stocked (named as
        # components) or kits at another version.
        case.path_parameters["sku"] = f"fuzz-kit-{next(PICK)}"
        if isinstance(case.body, dict) and "expectedVersion" in case.body:
            case.body["expectedVersion"] = 0
    elif route == "GET /v1/locations/{locationId}/stock" and case.query:
        case.query.pop("cursor", None)
    elif route == "GET /v1/orders/{orderId}/reservations" and ORDERS and case.path_parameters:
        case.path_parameters["orderId"] = ORDERS[next(PICK) % len(ORDERS)]
    elif route == "POST /v1/stock/{sku}/{locationId}/adjustments" and case.path_parameters:
        case.path_parameters["sku"], case.path_parameters["locationId"] = SEEDED[0]
        if isinstance(case.body, dict) and isinstance(case.body.get("delta"), int) and abs(case.body["delta"]) > 5:
            case.body["delta"] = 5


@schemathesis.hook
def after_call(context, case, response):
    if response.status_code not in (200, 201):
        return
    try:
        answer = response.json()
    except Exception:  # not JSON: nothing to keep
        return
    made = answer.get("reservationId") if isinstance(answer, dict) else None
    if not isinstance(made, str):
        return
    order = answer.get("orderId")
    if isinstance(order, str) and order not in ORDERS:
        ORDERS.append(order)
    if answer.get("status") == "PENDING" and made not in MADE:
        MADE.append(made)
    elif answer.get("status") != "PENDING" and made in MADE:
        MADE.remove(made)
