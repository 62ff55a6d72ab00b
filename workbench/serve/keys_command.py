"""`python -m workbench keys create|list|revoke`: manage the API keys file of `serve --keys`.

`create` prints the new key once, alone on stdout (so `KEY=$(... keys create ...)` works); the
file keeps only its hash. `list` shows ids, teams, limits and status, never a secret.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke API keys for `serve --keys`")
    actions = keys.add_subparsers(dest="keys_action", required=True)

    create = actions.add_parser("create", help="add a key for a team; prints it once")
    create.add_argument("--team", required=True, help="the team the key's usage counts against")
    create.add_argument("--rpm", type=int, help="requests per minute for this key")
    create.add_argument("--tpm", type=int, help="tokens per minute for this key")
    create.add_argument("--daily-tokens", type=int, help="tokens per day for this key")
    create.add_argument("--keys-file", required=True, help="the keys file (YAML, or JSON by its .json suffix)")
    create.set_defaults(func=cmd_create)

    list_ = actions.add_parser("list", help="the keys in a file: ids, teams, limits, status (no secrets)")
    list_.add_argument("--keys-file", required=True)
    list_.add_argument("--json", action="store_true", help="machine-readable output")
    list_.set_defaults(func=cmd_list)

    revoke = actions.add_parser("revoke", help="revoke a key by its id; a running server refuses it at once")
    revoke.add_argument("key_id")
    revoke.add_argument("--keys-file", required=True)
    revoke.set_defaults(func=cmd_revoke)


def cmd_create(args: argparse.Namespace) -> int:
    from workbench.core.errors import ConfigError
    from workbench.serve.keys import create_key

    for flag in ("rpm", "tpm", "daily_tokens"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be 1 or more, not {value}")
    key_id, key = create_key(args.keys_file, args.team, rpm=args.rpm, tpm=args.tpm, daily_tokens=args.daily_tokens)
    print(key, flush=True)
    print(f"created key {key_id} for team {args.team} in {args.keys_file}; it is shown only once", file=sys.stderr)
    return 0


def _limit(value: int | None) -> str:
    return "-" if value is None else str(value)


def cmd_list(args: argparse.Namespace) -> int:
    from workbench.serve.keys import load_keys

    keys = load_keys(args.keys_file)
    if args.json:
        rows = [
            {"key_id": key_id} | record.model_dump(mode="json", exclude={"sha256"})
            for key_id, record in keys.keys.items()
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'key id':<14} {'team':<16} {'rpm':>8} {'tpm':>10} {'daily tokens':>13}  {'created':<20} status")
    for key_id, r in keys.keys.items():
        status = f"revoked {r.revoked:%Y-%m-%d %H:%M}" if r.revoked else "active"
        print(
            f"{key_id:<14} {r.team:<16} {_limit(r.rpm):>8} {_limit(r.tpm):>10} {_limit(r.daily_tokens):>13}  "
            f"{r.created:%Y-%m-%d %H:%M:%S}  {status}"
        )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from workbench.serve.keys import revoke_key

    record = revoke_key(args.keys_file, args.key_id)
    print(f"revoked key {args.key_id} (team {record.team}) at {record.revoked:%Y-%m-%d %H:%M:%S} UTC")
    return 0
