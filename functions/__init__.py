"""Thin adapters: HTTP, timer and queue triggers that parse, call `shared`, and respond."""

import os

import azure.functions as func


def blueprints() -> list[func.Blueprint]:
    """Every area's blueprint, in registration order."""
    from functions import (
        account,
        accounts,
        admin_api,
        bans,
        cleanup,
        codes,
        console,
        guest,
        health,
        html,
        mail,
        openapi,
        resources,
        sessions,
        verifiers,
    )

    bps = [
        health.bp,
        openapi.bp,
        accounts.bp,
        sessions.bp,
        mail.bp,
        resources.bp,
        codes.bp,
        verifiers.bp,
        admin_api.bp,
        bans.bp,
    ]
    if _dev_mailbox_enabled():  # local only (the settings refuse it elsewhere)
        from functions import dev_mailbox

        bps.append(dev_mailbox.bp)
    return [*bps, cleanup.bp, html.bp, guest.bp, account.bp, console.bp]


def _dev_mailbox_enabled() -> bool:
    """DEV_MAILBOX_ENABLED, failing closed: indexing the app must not need valid settings
    (invalid ones stop the first request with a message naming them instead)."""
    # Unset or empty (everywhere but a local dev setup) means off whatever the other
    # settings say, so indexing need not read and validate them all: that loads
    # pydantic-settings and would add a good part to every cold start.
    if not any(name.lower() == "dev_mailbox_enabled" and value for name, value in os.environ.items()):
        return False
    from shared.config import SettingsError, get_settings

    try:
        return get_settings().dev_mailbox_enabled
    except SettingsError:
        return False
