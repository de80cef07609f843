"""Screenshots of the guest page and the console landing, for the README:

    python -m tests.browser.screenshots

Starts an Azurite and a local host of its own (the tests' settings, fresh keys), adds an
admin, a shared file and a little code activity, and saves docs/screenshots/guest.png and
docs/screenshots/admin.png with Debian's Chromium."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from devhost.azurite import Azurite
from devhost.process import start_devhost
from shared.config import get_settings
from shared.services import Services
from tests.browser.support import add_account, launch_chromium, share_file
from tests.conftest import app_settings_for

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with Azurite.on_free_ports() as azurite, tempfile.TemporaryDirectory() as tmp:
        values = app_settings_for(azurite.connection_string)
        os.environ.update(values)
        get_settings.cache_clear()
        svc = Services(get_settings())
        svc.storage.ensure_created()
        admin = add_account(svc, "admin", name="ops")
        owner = add_account(svc, "user", name="dana")
        resource, _ = share_file(svc, owner, "Quarterly report.pdf", b"%PDF-1.7\n" * 30_000, "application/pdf")
        for name in ("slides.pptx", "notes.txt"):  # a little activity for the console
            other, code = share_file(svc, owner, name, b"hello")
            svc.codes.redeem(other.resource_id, code, source="ip:screenshots")
        with start_devhost(values, Path(tmp) / "host.log") as host, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(base_url=host.url, viewport={"width": 960, "height": 640})
            page.goto(f"/r/{resource.resource_id}")
            page.screenshot(path=OUT / "guest.png", full_page=True)
            page.goto("/admin")
            page.get_by_label("Email").fill(admin.email)
            page.get_by_label("Password").fill(admin.password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{host.url}/admin")
            page.screenshot(path=OUT / "admin.png", full_page=True)
            browser.close()
    print(f"saved {OUT / 'guest.png'} and {OUT / 'admin.png'}")


if __name__ == "__main__":
    main()
