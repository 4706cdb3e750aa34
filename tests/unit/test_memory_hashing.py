"""The memory collector's reused read buffers: no hasher ever sees a buffer
being overwritten (each digest equals hashlib over the bytes as they were read)."""

from __future__ import annotations

import hashlib
import os

from collectors.memory.hashing import BackgroundHash, BufferRing


def test_ring_buffers_are_reused_only_after_every_hasher_consumed_them() -> None:
    hashers = (BackgroundHash(depth=4), BackgroundHash(depth=4))
    ring = BufferRing(hashers, slots=3, size=1 << 16)
    a, b = hashlib.sha256(), hashlib.sha256()
    want = hashlib.sha256()
    seen: set[int] = set()
    try:
        for i in range(200):
            buf = ring.take()
            seen.add(id(buf))
            n = 1 + (i * 7919) % len(buf)
            chunk = os.urandom(n)
            buf[:n] = chunk  # what a pread into the reused buffer does
            want.update(chunk)
            view = memoryview(buf)[:n]
            hashers[0].update((a,), view)
            hashers[1].update((b,), view)
            ring.sent()
            if i % 5 == 0:  # chunks not from the ring (zeros) count too
                hashers[0].update((a,), bytes(10))
                hashers[1].update((b,), bytes(10))
                want.update(bytes(10))
                ring.sent()
        for h in hashers:
            h.wait()
    finally:
        for h in hashers:
            h.close()
    assert len(seen) == 3
    assert a.hexdigest() == b.hexdigest() == want.hexdigest()
