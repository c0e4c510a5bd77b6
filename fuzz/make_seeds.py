#!/usr/bin/env python3
"""Turn classic pcaps into seed inputs for the recv_packet fuzz target.

usage: make_seeds.py OUTDIR FILE.pcap...

Each pcap becomes one seed in the target's input format: a flags byte, then per frame
`len: u16 LE`, `dt: u8` (time step in 100 ms units, capped at 255), and the frame bytes.
Stdlib only.
"""
import os, struct, sys

def frames(path):
    data = open(path, 'rb').read()
    magic = struct.unpack('<I', data[:4])[0]
    endian = {0xa1b2c3d4: '<', 0xd4c3b2a1: '>', 0xa1b23c4d: '<', 0x4d3cb2a1: '>'}.get(magic)
    if endian is None or struct.unpack(endian + 'I', data[20:24])[0] != 1:
        return
    nsec = magic in (0xa1b23c4d, 0x4d3cb2a1)
    off, last = 24, None
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + 'IIII', data[off:off + 16])
        off += 16
        if off + incl > len(data):
            return
        t = sec * 10 + (frac // (100_000_000 if nsec else 100_000))
        dt = 0 if last is None else max(0, min(255, t - last))
        last = t
        yield dt, data[off:off + incl][:65535]
        off += incl

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for path in sys.argv[2:]:
    blob = bytearray([0])
    for dt, f in frames(path):
        blob += struct.pack('<HB', len(f), dt) + f
    name = os.path.basename(path).rsplit('.', 1)[0]
    open(os.path.join(out, name), 'wb').write(blob)
