"""``forumqa user``, ``token``, ``collection``, ``grant``, ``revoke`` and ``audit``: people, programs, and
who may read and change which documents (rag/accounts). They work on the store the settings name: the
SQLite file beside the index, or the PostgreSQL store's tables; running servers follow within
FORUMQA_AUTH_CACHE_SECONDS."""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.cli.common import CONTEXT, actor, cli, folder_options, settings_of

if TYPE_CHECKING:
    from rag.accounts import Accounts


def _accounts(corpus_dir: Path | None, index_dir: Path | None) -> Accounts:
    from rag.accounts import Accounts
    from rag.store import open_store

    store = open_store(settings_of(corpus_dir=corpus_dir, index_dir=index_dir))
    return Accounts(store.accounts())


def _password(confirm: bool = True) -> str:
    """The password from stdin: typed twice (not echoed) at a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if confirm and getpass.getpass("again: ") != first:
            raise click.UsageError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) if at else "-"


# ------------------------------------------------------------------------------------------ users


@cli.group(context_settings=CONTEXT, short_help="people who sign in: add, list, disable, password",
           help="People who sign in to the page (or own tokens). Roles: reader (asks and reads), editor "
           "(also adds and removes documents in the collections granted to them for writing), admin "
           "(everything). Once one user exists, the API needs a sign-in or a token (README, \"Accounts\").")
def user() -> None:
    pass


@user.command("add", help="Add a user; the password comes from stdin (typed twice at a terminal, else its "
              "first line).\n\nexample: printf '%s\\n' \"$PASSWORD\" | forumqa user add alice --role editor")
@click.argument("name")
@click.option("--role", type=click.Choice(["reader", "editor", "admin"]), required=True)
@folder_options
def user_add(name: str, role: str, corpus_dir: Path | None, index_dir: Path | None) -> None:
    accounts = _accounts(corpus_dir, index_dir)
    added = accounts.add_user(name, role, _password(), actor=actor())
    print(f"added {role} {added} ({accounts.records.where})")
    if role != "admin":
        print(f"grant collections with `forumqa grant {added} COLLECTION read` (or write, for an editor)")


@user.command("list", help="Every user: name, role, state, created, and their grants.")
@folder_options
def user_list(corpus_dir: Path | None, index_dir: Path | None) -> None:
    accounts = _accounts(corpus_dir, index_dir)
    grants: dict[str, list[str]] = {}
    for g in accounts.records.grants():
        grants.setdefault(g.subject, []).append(f"{g.collection}:{g.level}")
    for u in accounts.users():
        state = "disabled" if u.disabled else "active"
        mine = "all collections" if u.role == "admin" else ", ".join(grants.get(u.name, [])) or "no grants"
        print(f"{u.name:<24} {u.role:<7} {state:<8} created {_when(u.created)}  {mine}")
    if grants.get("*"):
        print(f"{'*':<24} everyone (anonymous too): {', '.join(grants['*'])}")


@user.command("disable", help="Stop a user signing in; their sessions end and their tokens are refused "
              "(on every server within FORUMQA_AUTH_CACHE_SECONDS).")
@click.argument("name")
@folder_options
def user_disable(name: str, corpus_dir: Path | None, index_dir: Path | None) -> None:
    _accounts(corpus_dir, index_dir).set_disabled(name, True, actor=actor())
    print(f"disabled {name}")


@user.command("enable", help="Let a disabled user sign in again.")
@click.argument("name")
@folder_options
def user_enable(name: str, corpus_dir: Path | None, index_dir: Path | None) -> None:
    _accounts(corpus_dir, index_dir).set_disabled(name, False, actor=actor())
    print(f"enabled {name}")


@user.command("password", help="Set a user's password (from stdin, as for `user add`); their sessions end.")
@click.argument("name")
@folder_options
def user_password(name: str, corpus_dir: Path | None, index_dir: Path | None) -> None:
    _accounts(corpus_dir, index_dir).set_password(name, _password(), actor=actor())
    print(f"changed the password of {name}; their sessions ended")


# ------------------------------------------------------------------------------------------ tokens


@cli.group(context_settings=CONTEXT, short_help="tokens for programs: create, list, revoke",
           help="Tokens let programs use the API as a user: `Authorization: Bearer <token>` (OpenAI clients: "
           "api_key=<token>). Only their sha256 is kept.")
def token() -> None:
    pass


@token.command("create", help="Make a token for USER; it is printed once, alone on the last line.")
@click.argument("user_name", metavar="USER")
@click.option("--name", help="what to call it (default USER-1, USER-2, ...); `token revoke` takes it")
@folder_options
def token_create(user_name: str, name: str | None, corpus_dir: Path | None, index_dir: Path | None) -> None:
    made, secret = _accounts(corpus_dir, index_dir).create_token(user_name, name, actor=actor())
    print(f"token {made} for {user_name}: shown this once, keep it secret", file=sys.stderr)
    print(secret)


@token.command("list", help="Every token: name, user, created (never the token itself).")
@folder_options
def token_list(corpus_dir: Path | None, index_dir: Path | None) -> None:
    for t in _accounts(corpus_dir, index_dir).tokens():
        print(f"{t.name:<24} {t.user:<24} created {_when(t.created)}")


@token.command("revoke", help="Revoke the token named NAME: every server refuses it within "
               "FORUMQA_AUTH_CACHE_SECONDS.")
@click.argument("name")
@folder_options
def token_revoke(name: str, corpus_dir: Path | None, index_dir: Path | None) -> None:
    owner = _accounts(corpus_dir, index_dir).revoke_token(name, actor=actor())
    print(f"revoked {name} (of {owner})")


# ------------------------------------------------------------------------------------------ collections


@cli.group(context_settings=CONTEXT, short_help="collections of documents: create, list",
           help="Every document belongs to one collection (uploads name it; documents from before, or put in "
           "the corpus folder by hand, are in 'default'). Users read the collections granted to them.")
def collection() -> None:
    pass


@collection.command("create", help="Create a collection.")
@click.argument("name")
@folder_options
def collection_create(name: str, corpus_dir: Path | None, index_dir: Path | None) -> None:
    made = _accounts(corpus_dir, index_dir).add_collection(name, actor=actor())
    print(f"created collection {made}; grant it with `forumqa grant USER {made} read|write`")


@collection.command("list", help="Every collection and who may read or write it.")
@folder_options
def collection_list(corpus_dir: Path | None, index_dir: Path | None) -> None:
    accounts = _accounts(corpus_dir, index_dir)
    grants: dict[str, list[str]] = {}
    for g in accounts.records.grants():
        grants.setdefault(g.collection, []).append(f"{g.subject}:{g.level}")
    for name in accounts.collections():
        print(f"{name:<24} {', '.join(grants.get(name, [])) or 'admins only'}")


@cli.command(help="Let USER ('*': everyone, anonymous requests too, read only) read or write COLLECTION. "
             "write (add and remove its documents) is for editors; it includes read.\n\n"
             "example: forumqa grant alice reports read")
@click.argument("subject", metavar="USER")
@click.argument("collection_name", metavar="COLLECTION")
@click.argument("level", type=click.Choice(["read", "write"]))
@folder_options
def grant(subject: str, collection_name: str, level: str, corpus_dir: Path | None,
          index_dir: Path | None) -> None:
    _accounts(corpus_dir, index_dir).grant(subject, collection_name, level, actor=actor())
    print(f"granted {level} on {collection_name} to {subject}")


@cli.command(help="Take back what `forumqa grant` gave USER on COLLECTION.")
@click.argument("subject", metavar="USER")
@click.argument("collection_name", metavar="COLLECTION")
@folder_options
def revoke(subject: str, collection_name: str, corpus_dir: Path | None, index_dir: Path | None) -> None:
    _accounts(corpus_dir, index_dir).revoke(subject, collection_name, actor=actor())
    print(f"revoked {subject}'s grant on {collection_name}")


@cli.command(help="Who did what and when, oldest first: documents added and removed (and into or from which "
             "collection), users, tokens, collections and grants changed, sign-ins locked. The same as GET "
             "/api/audit (admins).")
@click.option("--limit", type=int, default=200, show_default=True,
              help="the latest entries, at most this many")
@click.option("--json", "as_json", is_flag=True, help="one JSON object a line")
@folder_options
def audit(limit: int, as_json: bool, corpus_dir: Path | None, index_dir: Path | None) -> None:
    import json

    for row in _accounts(corpus_dir, index_dir).audit_log(limit):
        if as_json:
            print(json.dumps({"at": row.at, "actor": row.actor, "action": row.action, "target": row.target,
                              "detail": row.detail}, ensure_ascii=False))
        else:
            print(f"{_when(row.at)}  {row.actor:<16} {row.action:<17} {row.target}  {row.detail}".rstrip())
