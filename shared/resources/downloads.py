"""Download links: a short-lived, read-only SAS for exactly one blob.

Storage serves the bytes itself, so a download costs the app nothing after redemption.
With managed identity (Azure, shared keys disabled) the SAS is a user delegation SAS,
signed with a delegation key that is fetched once and reused until shortly before it
expires; with a connection string (Azurite) it is a service SAS signed with the account
key. Either way the link is made locally: no storage round trip on the redeem path
except, rarely, to renew the delegation key. The link names the file through
Content-Disposition, and it is single-purpose: read, one blob, minutes.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from urllib.parse import quote

from azure.storage.blob import BlobSasPermissions, BlobServiceClient, UserDelegationKey, generate_blob_sas

from shared.clock import Clock

# How long a fetched user delegation key is valid (Azure allows up to 7 days) and how
# long before its end a new one is fetched.
DELEGATION_KEY_LIFETIME = timedelta(hours=12)
DELEGATION_KEY_RENEW_BEFORE = timedelta(hours=1)
# Storage's clock may run a little behind ours; a SAS must not start in its future.
CLOCK_SKEW = timedelta(minutes=5)


def content_disposition(file_name: str) -> str:
    ascii_name = file_name.encode("ascii", "replace").decode().replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name, safe='')}"


class DownloadSigner:
    def __init__(self, blobs: BlobServiceClient, clock: Clock, *, lifetime: timedelta):
        self._blobs = blobs
        self._clock = clock
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._delegation_key: UserDelegationKey | None = None
        self._delegation_key_end: datetime | None = None

    def _account_key(self) -> str | None:
        return getattr(self._blobs.credential, "account_key", None)

    def _user_delegation_key(self, now: datetime) -> UserDelegationKey:
        with self._lock:
            if self._delegation_key is None or now >= self._delegation_key_end - DELEGATION_KEY_RENEW_BEFORE:
                end = now + DELEGATION_KEY_LIFETIME
                self._delegation_key = self._blobs.get_user_delegation_key(now - CLOCK_SKEW, end)
                self._delegation_key_end = end
            return self._delegation_key

    def url(self, container: str, blob: str, file_name: str, content_type: str) -> tuple[str, datetime]:
        """A read-only link to one blob, and when it stops working."""
        now = self._clock.now()
        expires_at = now + self.lifetime
        blob_url = self._blobs.get_blob_client(container, blob).url
        signing = {"account_key": self._account_key()}
        if signing["account_key"] is None:
            signing = {"user_delegation_key": self._user_delegation_key(now)}
        token = generate_blob_sas(
            account_name=self._blobs.account_name,
            container_name=container,
            blob_name=blob,
            permission=BlobSasPermissions(read=True),
            start=now - CLOCK_SKEW,
            expiry=expires_at,
            content_disposition=content_disposition(file_name),
            content_type=content_type,
            protocol="https" if blob_url.startswith("https://") else None,
            **signing,
        )
        return f"{blob_url}?{token}", expires_at
