"""`ingest-platform app …`: operator tools of the Ingest Service intake."""

import argparse
import hashlib
import hmac
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import httpx
import stripe

from ingest_platform.cli import GROUPS, add_command

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8080/ingest/stripe/webhook"


def register(groups: argparse._SubParsersAction) -> None:
    parser = add_command(groups, "app", GROUPS["app"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ip_hash = add_command(
        commands, "ip-hash", "print the keyed hash stored for a client IP (INGEST_IP_HASH_SECRET), to find its events"
    )
    ip_hash.add_argument("ip", help="the client's IP address, IPv4 or IPv6")
    ip_hash.set_defaults(handler=_ip_hash)

    send = add_command(
        commands,
        "send-stripe-event",
        "sign a Stripe event JSON file with STRIPE_WEBHOOK_SECRET as Stripe does and POST it (local testing)",
    )
    send.add_argument("file", type=Path, help="the event as Stripe would send it")
    send.add_argument("--url", default=DEFAULT_WEBHOOK_URL, help=f"webhook endpoint (default {DEFAULT_WEBHOOK_URL})")
    send.set_defaults(handler=_send_stripe_event)

    search = add_command(
        commands, "search", "search the rules and crawled items (the app/search/rules_index index), best match first"
    )
    search.add_argument("terms", help="words that must all match (title, tags, summary)")
    search.add_argument("--limit", type=int, default=20, help="at most this many results (default 20)")
    search.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    search.set_defaults(handler=_search)


def _ip_hash(args: argparse.Namespace) -> int:
    secret = _first_secret("INGEST_IP_HASH_SECRET")
    if secret is None:
        return 2
    # The same HMAC-SHA256 the webhook app stores (webhook_app/client_ip.py); only the first value is the key.
    print(hmac.new(secret.encode(), args.ip.strip().encode(), hashlib.sha256).hexdigest())
    return 0


def _send_stripe_event(args: argparse.Namespace) -> int:
    secret = _first_secret("STRIPE_WEBHOOK_SECRET")
    if secret is None:
        return 2
    body = args.file.read_text()
    header = stripe.WebhookSignature.generate_signature_header(body, secret)
    response = httpx.post(
        args.url,
        content=body.encode(),
        headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header},
        timeout=30,
    )
    print(f"{response.status_code} {response.text.strip()}")
    return 0 if response.is_success else 1


def _search(args: argparse.Namespace) -> int:
    from ingest_platform.app.search import search
    from ingest_platform.resources.warehouse import WarehouseResource

    with WarehouseResource().engine.connect() as connection:
        hits = search(connection, args.terms, limit=args.limit)
    for hit in hits:
        if args.json:
            print(json.dumps(asdict(hit)))
        else:
            trending = "-" if hit.trending is None else f"{hit.trending:.3f}"
            print(f"{hit.score:9.4f}  {trending:>8}  {hit.kind:<5}  {hit.id}  {hit.title}")
    if not hits:
        print("no matches", file=sys.stderr)
    return 0 if hits else 1


def _first_secret(name: str) -> str | None:
    values = [value.strip() for value in os.environ.get(name, "").split(",") if value.strip()]
    if not values:
        print(f"{name} is not set", file=sys.stderr)
        return None
    return values[0]
