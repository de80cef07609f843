"""Outgoing mail: requests only enqueue (the `mail-outbox` queue); a queue-triggered
function hands each message to the configured provider, retrying with backoff."""
