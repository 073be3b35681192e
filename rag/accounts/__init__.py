"""People and programs: users with roles, sessions, tokens, collections, grants and the audit log.

- :mod:`.model`: roles, collections, grants and the :class:`Principal` a request acts as;
- :mod:`.records`: the tables they are kept in (one SQL implementation; the store says where);
- :mod:`.sqlite`: the file store's SQLite file beside the index;
- :mod:`.service`: :class:`Accounts`, what the server and the CLI do with them.
"""

from __future__ import annotations

from rag.accounts.model import (
    DEFAULT_COLLECTION,
    EVERYONE,
    KEY,
    LEVELS,
    NOBODY,
    OPEN,
    ROLES,
    AccountError,
    Principal,
    collection_name,
    collection_of,
    user_name,
)
from rag.accounts.records import AuditRow, GrantRow, SqlRecords, TokenRow, UserRow
from rag.accounts.service import (
    Accounts,
    Session,
    SignInRefused,
    check_password,
    csrf_token,
    digest,
    writable_default,
)

__all__ = [
    "DEFAULT_COLLECTION",
    "EVERYONE",
    "KEY",
    "LEVELS",
    "NOBODY",
    "OPEN",
    "ROLES",
    "AccountError",
    "Accounts",
    "AuditRow",
    "GrantRow",
    "Principal",
    "Session",
    "SignInRefused",
    "SqlRecords",
    "TokenRow",
    "UserRow",
    "check_password",
    "collection_name",
    "collection_of",
    "csrf_token",
    "digest",
    "user_name",
    "writable_default",
]
