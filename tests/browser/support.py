"""What the browser tests and the screenshot script share: Debian's Chromium with the
flags the project runs it with, and accounts, files and codes made through the services
(on the same storage and keys as the local host under test)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shared.accounts.addresses import parse_email
from shared.accounts.passwords import PasswordHasher
from shared.accounts.users import User, new_user_id
from shared.services import Services

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "violet-Harbor-engine-42"


def launch_chromium(playwright):
    """Debian's Chromium, never a browser Playwright would download."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)


@dataclass(frozen=True)
class Account:
    user_id: str
    email: str
    password: str


def add_account(svc: Services, role: str, *, name: str | None = None) -> Account:
    """An active account with a real bcrypt password, as registration plus activation leave it."""
    address = parse_email(f"{name or role}.{secrets.token_hex(4)}@example.com")
    now = datetime.now(UTC)
    user = User(
        user_id=new_user_id(),
        email=address.display,
        email_key=address.key,
        email_hash=address.key_hash,
        role=role,
        status="active",
        password_hash=PasswordHasher(svc.settings.bcrypt_cost).hash(PASSWORD),
        password_changed_at=now,
        created_at=now,
        activated_at=now,
    )
    assert svc.users.create(user)
    return Account(user.user_id, user.email, PASSWORD)


def share_file(svc: Services, owner: Account, name: str, data: bytes, content_type: str = "text/plain"):
    """A stored file of `owner` and a fresh code for it: (resource, code)."""
    resource, _ = svc.resources.put(owner.user_id, name, data, content_type)
    issued = svc.codes.issue(owner.user_id, resource.resource_id)
    return resource, issued.code


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def with_axe(context) -> None:
    """axe-core in every page of the context: an init script, which the pages' CSP (no
    inline script) does not apply to."""
    context.add_init_script(path=AXE)


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations of the page as it is now (WCAG 2.x A
    and AA rules and best practices): "rule: selectors" each."""
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", "));
        }"""
    )
