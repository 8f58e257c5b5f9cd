#!/usr/bin/env python3
"""Writes the seed corpus for the frame-decoder fuzzer (Fuzz/corpus/): a few valid frame
streams built by hand from the AMQP 0-9-1 spec. Re-run after changing it; the files are
committed so the fuzzer needs nothing but the repository."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def frame(kind, channel, payload):
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce"


def method(channel, class_id, method_id, args=b""):
    return frame(1, channel, struct.pack(">HH", class_id, method_id) + args)


def shortstr(s):
    b = s.encode()
    return struct.pack(">B", len(b)) + b


def longstr(b):
    return struct.pack(">I", len(b)) + b


def table(entries):
    body = b"".join(shortstr(k) + v for k, v in entries)
    return struct.pack(">I", len(body)) + body


def header(channel, body_size, flags=0, props=b""):
    return frame(2, channel, struct.pack(">HHQH", 60, 0, body_size, flags) + props)


every_type = table([
    ("t", b"t\x01"), ("b", b"b\xff"), ("B", b"B\x07"), ("s", b"s\xff\xfe"), ("u", b"u\x00\x02"),
    ("I", b"I" + struct.pack(">i", -3)), ("i", b"i" + struct.pack(">I", 3)),
    ("l", b"l" + struct.pack(">q", -4)), ("f", b"f" + struct.pack(">f", 1.5)),
    ("d", b"d" + struct.pack(">d", 2.5)), ("D", b"D\x02" + struct.pack(">i", 314)),
    ("S", b"S" + longstr(b"hello")), ("x", b"x" + longstr(b"\x00\xff")),
    ("T", b"T" + struct.pack(">Q", 1700000000)), ("V", b"V"),
    ("A", b"A" + longstr(b"I\x00\x00\x00\x01" + b"S" + longstr(b"a") + b"V")),
    ("F", b"F" + table([("nested", b"F" + table([("deep", b"t\x00")]))])),
])

seeds = {
    "connection-start": method(0, 10, 10, b"\x00\x09" + every_type + longstr(b"PLAIN AMQPLAIN") + longstr(b"en_US")),
    "connection-tune": method(0, 10, 30, struct.pack(">HIH", 2047, 131072, 60)),
    "queue-declare": method(1, 50, 10, b"\x00\x00" + shortstr("jobs") + b"\x1f" + every_type),
    "publish-content": (
        method(1, 60, 40, b"\x00\x00" + shortstr("amq.direct") + shortstr("rk") + b"\x01")
        + header(1, 10, 0x9000, shortstr("text/plain") + b"\x02")
        + frame(3, 1, b"hello") + frame(3, 1, b"world")
    ),
    "deliver-all-properties": (
        method(2, 60, 60, shortstr("ctag") + struct.pack(">Q", 1) + b"\x01" + shortstr("ex") + shortstr("rk"))
        + header(2, 3, 0xFFFC,
                 shortstr("a/b") + shortstr("gzip") + every_type + b"\x02\x05" + shortstr("c") + shortstr("r")
                 + shortstr("1000") + shortstr("m") + struct.pack(">Q", 5) + shortstr("t") + shortstr("u")
                 + shortstr("app") + shortstr("cl"))
        + frame(3, 2, b"abc")
    ),
    "heartbeat-ack-close": (
        frame(8, 0, b"") + method(1, 60, 80, struct.pack(">Q", 7) + b"\x01")
        + method(0, 10, 50, struct.pack(">H", 320) + shortstr("bye") + struct.pack(">HH", 0, 0))
    ),
    "confirm-nack": method(1, 85, 10, b"\x00") + method(1, 60, 120, struct.pack(">Q", 9) + b"\x03"),
}

os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {OUT}")
