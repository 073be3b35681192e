"""Who may do what: roles, collections, grants, and the principal a request acts as.

* A **user** has a role: ``reader`` (asks and reads), ``editor`` (also adds and removes documents in the
  collections granted to them for writing) or ``admin`` (everything, every collection, the audit log).
* Every document belongs to one **collection**: the one named in its metadata (``collection``; an upload
  sets it), else :data:`DEFAULT_COLLECTION`. The collection travels with the document itself (its
  ``.meta.json``, or its row's metadata in the database), so what an index serves always says whose it is.
* A **grant** gives a user (or :data:`EVERYONE`, signed in or not) ``read`` or ``write`` on a collection;
  ``write`` implies ``read`` and is for editors only.
* A :class:`Principal` is what one request acts as: its readable and writable collections, resolved from
  a session, a token, the single API key, or nothing at all. Everything a request sees is filtered by it
  where the data leaves the store (:meth:`Principal.readable_ids`).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from rag.types import Document

Role = Literal["reader", "editor", "admin"]
ROLES: tuple[Role, ...] = ("reader", "editor", "admin")
Level = Literal["read", "write"]
LEVELS: tuple[Level, ...] = ("read", "write")

#: Documents that name no collection (every document from before accounts, and files put in the corpus
#: folder by hand) belong here.
DEFAULT_COLLECTION = "default"
#: The grant subject meaning everyone, including anonymous requests.
EVERYONE = "*"

_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
_COLLECTION = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class AccountError(ValueError):
    """A request about accounts that cannot be done as asked; the message says why, for people."""


def user_name(name: str) -> str:
    """``name`` as stored (lower case), or an :class:`AccountError` saying what a name may be."""
    normal = name.strip().lower()
    if not _NAME.match(normal):
        raise AccountError(
            f"{name!r} is not a user name: 1-64 characters, letters, digits and . _ @ -, starting with a "
            "letter or digit"
        )
    return normal


def collection_name(name: str) -> str:
    normal = name.strip().lower()
    if not _COLLECTION.match(normal):
        raise AccountError(
            f"{name!r} is not a collection name: 1-64 characters, letters, digits and . _ -, starting with "
            "a letter or digit"
        )
    return normal


def collection_of(document: Document) -> str:
    """The collection ``document`` belongs to (its metadata's ``collection``, else the default)."""
    value = document.metadata.get("collection")
    return str(value) if isinstance(value, str) and value else DEFAULT_COLLECTION


Via = Literal["open", "key", "session", "token", "anonymous", "nobody"]


@dataclass(frozen=True)
class Principal:
    """What a request acts as. ``read``/``write`` None: every collection."""

    name: str | None  # the user; None for the open server, the API key and anonymous requests
    role: Role | Literal["anonymous"]
    via: Via
    read: frozenset[str] | None = frozenset()
    write: frozenset[str] | None = frozenset()
    expires: float | None = None  # a session's end (Unix time)
    _ids: OrderedDict[str, tuple[str, ...] | None] = field(
        default_factory=OrderedDict, compare=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def everything(self) -> bool:
        return self.read is None

    @property
    def signed_in(self) -> bool:
        return self.name is not None

    @property
    def admin(self) -> bool:
        return self.role == "admin" or self.via in ("open", "key")

    def may_read_collection(self, collection: str) -> bool:
        return self.read is None or collection in self.read

    def may_write_collection(self, collection: str) -> bool:
        return self.write is None or collection in self.write

    @property
    def may_write(self) -> bool:
        """Whether this principal may add or remove documents in some collection."""
        return self.write is None or bool(self.write)

    def may_read(self, document: Document) -> bool:
        return self.read is None or collection_of(document) in self.read

    def readable_ids(self, documents: Mapping[str, Document], version: str) -> tuple[str, ...] | None:
        """The ids of ``documents`` (an index's, at ``version``) this principal may read, sorted; None when
        it may read them all (no filter needed). Remembered per version."""
        if self.read is None:
            return None
        with self._lock:
            if version in self._ids:
                return self._ids[version]
        ids = tuple(sorted(d for d, doc in documents.items() if collection_of(doc) in self.read))
        result = None if len(ids) == len(documents) else ids
        with self._lock:
            self._ids[version] = result
            while len(self._ids) > 4:
                self._ids.popitem(last=False)
        return result

    def public(self) -> dict[str, object]:
        """What GET /api/session says of it."""
        return {
            "user": self.name,
            "role": self.role if self.via not in ("open", "key") else "admin",
            "via": self.via,
            "read": None if self.read is None else sorted(self.read),
            "write": None if self.write is None else sorted(self.write),
            "expires": self.expires,
        }


#: The server without accounts and without a key: today's open behaviour.
OPEN = Principal(None, "admin", "open", None, None)
#: The single FORUMQA_API_KEY.
KEY = Principal(None, "admin", "key", None, None)
#: No credentials, accounts on, and nothing granted to everyone.
NOBODY = Principal(None, "anonymous", "nobody")
