"""Who is asking and what they may do: sessions, known devices, CSRF tokens, the keyed
hashes every secret is stored as, and authorization, the one place that decides access."""
