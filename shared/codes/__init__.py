"""One-time access codes: models (values, no I/O), store (the `codes` table and the
expiry index) and service (issue, redeem, list, revoke, purge). Import from the modules
themselves: the package re-exports nothing, so importing one of them (the models, which
the edge's schemas load at every cold start) does not load the others."""
