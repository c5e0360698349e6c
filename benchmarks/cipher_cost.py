"""Cost of encryption at rest per stored event: the mapper's encode and the fast decoder, with and without the cipher.

    .venv/bin/python -m benchmarks.cipher_cost [--people 300]

Builds a small county in memory, takes its stored events, and times
``mapper.to_stored_event`` and ``infra.event_store.stored_events.row_decoder`` over all of them, plain
and with :class:`events.cipher.LedgerCipher` (AES-256-GCM): the difference per event is
what encryption adds to every write and every read of the pipeline.
"""
from __future__ import annotations

import argparse
import copy
import time

from eventsourcing.utils import Environment


def main(argv: list[str] | None = None) -> int:
    from events.ledger_events import encode_event
    from events.pii import KeyRing, new_key
    from entrypoints.wiring import bootstrap
    from events.cipher import LedgerCipher
    from infra.settings import Settings
    from entrypoints.simulation.county import generate_county
    from infra.event_store.stored_events import row_decoder

    args = _args(argv)
    system = bootstrap(Settings(persistence="memory", id_key=b"bench"))
    try:
        generate_county(3, args.people).apply_to(system.ledger)
        plain = system.ledger.mapper
        stored = system.ledger.recorder.select_notifications(1, 10_000_000)
        events = [plain.to_domain_event(s) for s in stored]
        key = new_key()
        encrypted = copy.copy(plain)
        encrypted.cipher = LedgerCipher(Environment(env={"CIPHER_KEY": key}))
        rows: dict[str, list] = {}
        out = {}
        for label, mapper in (("plain", plain), ("aes-gcm", encrypted)):
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                rows[label] = [mapper.to_stored_event(e) for e in events]
                best = min(best, time.perf_counter() - t0)
            out[f"encode {label}"] = best
            decode = row_decoder(mapper)
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                for s in rows[label]:
                    decode(s.originator_id, s.originator_version, s.topic, s.state)
                best = min(best, time.perf_counter() - t0)
            out[f"decode {label}"] = best
        ring = KeyRing.from_texts(key)
        registered = [e for e in events if type(e).__name__ == "Registered"]
        publish = fields = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for e in registered:
                encode_event(e, keys=ring)
            publish = min(publish, (time.perf_counter() - t0) / max(1, len(registered)))
            t0 = time.perf_counter()
            for e in registered:
                ring.encrypt(e.id_number.encode()), ring.encrypt(e.name.encode())
            fields = min(fields, (time.perf_counter() - t0) / max(1, len(registered)))
        n = len(events)
        size = sum(len(s.state) for s in rows["plain"]) / n
        print(f"{n} stored events, {size:.0f} bytes of state on average (+28 bytes encrypted)")
        for op in ("encode", "decode"):
            p, c = out[f"{op} plain"] / n * 1e6, out[f"{op} aes-gcm"] / n * 1e6
            print(f"{op}: plain {p:.1f} µs/event, aes-gcm {c:.1f} µs/event, cost {c - p:+.1f} µs/event")
        print(f"publish a Registered event: {publish * 1e6:.1f} µs/event, of which encrypting its two fields "
              f"{fields * 1e6:.1f} µs")
    finally:
        system.close()
    return 0


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(main())
