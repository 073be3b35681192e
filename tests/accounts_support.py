"""What the accounts tests share (tests/accounts/): the documents of three collections (the report in
'default', a memo in 'alpha', a log in 'beta'), the users, and handles on the apps serving them."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from rag.accounts import Accounts
from rag.config import Settings

ALPHA = (
    "Alpha Harbor Memo\n\n"
    "The Alpha harbor crane lifted 912 containers on 4 May 2030. The crane operator was Mira Kovac. "
    "The harbor master approved a second crane for the northern quay. Alpha harbor handles grain and timber "
    "shipments from the inland railway.\n"
)
BETA = (
    "Beta Reactor Log\n\n"
    "The Beta reactor coolant pump failed on 17 June 2031 after 4200 hours of service. Engineer Tomas Rendl "
    "replaced the seal with part QX-77 from the spare stock. The reactor returned to full power two days "
    "later. The inspection found corrosion in the secondary loop valves.\n"
)
#: A question that quotes beta's document word for word.
BETA_VERBATIM = "Engineer Tomas Rendl replaced the seal with part QX-77 from the spare stock."
ALPHA_ID, BETA_ID, REPORT_ID = "alpha-harbor-memo", "beta-reactor-log", "third-korea-russia-forum"
PASSWORDS = {"admin": "admin-pass-1", "alice": "alice-pass-1", "bea": "bea-pass-12", "ed": "ed-pass-123"}
# Words only beta's document holds: none may reach a user who cannot read beta.
BETA_MARKS = ("Beta Reactor", "beta-reactor-log", "Rendl", "QX-77", "coolant", "4200 hours")
ALPHA_MARKS = ("Alpha Harbor", "alpha-harbor-memo", "Mira Kovac", "912 containers")


def make_users(accounts: Accounts) -> None:
    accounts.add_user("admin", "admin", PASSWORDS["admin"])
    accounts.add_user("alice", "reader", PASSWORDS["alice"])
    accounts.add_user("bea", "reader", PASSWORDS["bea"])
    accounts.add_user("ed", "editor", PASSWORDS["ed"])
    accounts.add_collection("alpha")
    accounts.add_collection("beta")
    accounts.grant("alice", "alpha", "read")
    accounts.grant("bea", "beta", "read")
    accounts.grant("ed", "alpha", "write")


@dataclass
class Site:
    settings: Settings
    accounts: Accounts
    client: TestClient

    def signed_in(self, user: str) -> TestClient:
        """A client of its own, signed in as ``user``, sending the CSRF proof as the page does."""
        client = TestClient(self.client.app)
        response = client.post("/api/session", json={"username": user, "password": PASSWORDS[user]})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf"]
        return client

    def token(self, user: str) -> dict[str, str]:
        _, token = self.accounts.create_token(user)
        return {"Authorization": f"Bearer {token}"}


@dataclass
class LiveSite:
    url: str
    accounts: Accounts


