#!/usr/bin/env python3
"""Publishes canonical meter readings at a steady rate through a real broker (MQTT 3.1.1, QoS 0,
written here on a plain socket so nothing from PyPI is needed): `devices` meters named
bench-0000..., each reading stamped with the current time in milliseconds and an index that
rises. Runs until killed; prints how many it sent every 5 seconds. Used by pages-under-ingest.sh.

With --count N it sends N messages as fast as the socket takes them and exits (a backlog for
drain-under-readyz.sh): each device's readings are then one minute apart, the last one now.
"""
import argparse
import datetime
import json
import socket
import struct
import sys
import time


def remaining_length(n):
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(kind, body):
    return bytes([kind]) + remaining_length(len(body)) + body


def text(value):
    data = value.encode()
    return struct.pack("!H", len(data)) + data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--devices", type=int, default=400)
    parser.add_argument("--rate", type=int, default=1000, help="messages per second")
    parser.add_argument("--count", type=int, default=0, help="send this many as fast as possible, then exit")
    args = parser.parse_args()
    if args.count:
        return backlog(args)
    sock = socket.create_connection(("127.0.0.1", args.port))
    connect = text("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + text(f"bench-load-{time.time_ns()}")
    sock.sendall(packet(0x10, connect))
    sock.recv(4)
    index = [1_000_000 + 10_000 * d for d in range(args.devices)]
    sent = 0
    start = time.monotonic()
    last_report = start
    device = 0
    while True:
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        index[device] += 1
        payload = json.dumps({"ts": stamp, "energy_wh": index[device], "power_w": 300}).encode()
        sock.sendall(packet(0x30, text(f"meters/bench-{device:04d}/reading") + payload))
        sent += 1
        device = (device + 1) % args.devices
        # Keep to the rate: sleep until this message's turn.
        ahead = sent / args.rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
        if time.monotonic() - last_report >= 5:
            last_report = time.monotonic()
            print(f"sent {sent}", flush=True)
            sock.sendall(packet(0xC0, b""))  # PINGREQ keeps the session alive


def backlog(args):
    sock = socket.create_connection(("127.0.0.1", args.port))
    connect = text("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + text(f"bench-backlog-{time.time_ns()}")
    sock.sendall(packet(0x10, connect))
    sock.recv(4)
    steps = (args.count + args.devices - 1) // args.devices
    first = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(minutes=steps)
    buffer = bytearray()
    for n in range(args.count):
        step, device = divmod(n, args.devices)
        stamp = (first + datetime.timedelta(minutes=step)).strftime("%Y-%m-%dT%H:%M:%SZ")
        payload = json.dumps({"ts": stamp, "energy_wh": 1_000_000 + 10_000 * device + 5 * step, "power_w": 300}).encode()
        buffer += packet(0x30, text(f"meters/bench-{device:04d}/reading") + payload)
        if len(buffer) > 65536:
            sock.sendall(buffer)
            buffer.clear()
    sock.sendall(buffer + packet(0xE0, b""))  # DISCONNECT
    sock.close()
    print(f"sent {args.count}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
