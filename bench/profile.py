"""Where a redemption's, an issuance's or a sign-in's time goes, one at a time in process
(as at concurrency 1): `python -m bench.profile [redeem|issue|login] [--n 300]`, on its own
Azurite. A sign-in is from a new device, as the login benchmark's.

Prints pyinstrument's call tree of the calling thread, which waits on the storage calls
run beside it, so the tree shows the critical path: each storage round trip in turn, and
the Python around them. Writes it to docs/profiles/<op>.txt too."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from bench.harness import Stack
from bench.seed import PASSWORD, Seeder

PROFILES = Path(__file__).resolve().parent.parent / "docs" / "profiles"


def main(argv: list[str] | None = None) -> None:
    from pyinstrument import Profiler

    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    parser.add_argument("op", choices=("redeem", "issue", "login"))
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args(argv)
    with Stack.start() as stack:
        svc = stack.services()
        seeder = Seeder(svc)
        owner = seeder.user(with_resource=False)
        resources = [rid for _, rid in seeder.resources([owner], args.n // 2 + 22)]
        token = owner.token

        def source() -> str:
            return f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(256)}"

        def issue(i: int):
            session = svc.sessions.authenticate(token)
            return svc.codes.issue(session.user_id, resources[i // 2], source=source())

        for i in range(40):  # warm: connections, caches, the audit blob
            warm = issue(i)
            svc.codes.redeem(warm.resource_id, warm.code, source=source())
        codes = [issue(40 + i) for i in range(args.n)] if args.op == "redeem" else []
        profiler = Profiler(interval=0.0002)
        profiler.start()
        for i in range(args.n):
            if args.op == "redeem":
                svc.codes.redeem(codes[i].resource_id, codes[i].code, source=source())
            elif args.op == "login":
                svc.accounts.login(owner.email, PASSWORD, client_ip=source())
            else:
                issue(40 + i)
        profiler.stop()
    # paths relative to the repository, so the file names no machine
    text = profiler.output_text(unicode=False, color=False, show_all=False).replace(f"{PROFILES.parent.parent}/", "")
    PROFILES.mkdir(exist_ok=True)
    (PROFILES / f"{args.op}.txt").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
