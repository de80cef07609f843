"""Housekeeping: the expiry index every area registers what expires in, the cleanup job
that sweeps it, and the job-run records and cursors the console shows."""
