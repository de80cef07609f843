"""Abuse resistance: who is asking (sources), the shared rate limiter, which limits apply
where (guard), password-change attempts per account, and the brute-force figures they
guarantee (odds)."""
