#!/usr/bin/env python3
"""Queue features and persistence with pika, against any broker (issue 6).

    python3 Tests/Interop/pika_features.py amqp://guest:guest@127.0.0.1:5673/%2F
    python3 Tests/Interop/pika_features.py URL --broker-binary .build/debug/conductor

Scenarios: message TTL and per-message expiration with dead lettering (the x-death
header as RabbitMQ writes it), dead lettering of rejected messages, an expiry self-cycle
dropped after one death, max length with drop-head, reject-publish (nacks) and
reject-publish-dlx (nack and dead letter), max length in bytes, priorities. With
--broker-binary (our broker only: restarting RabbitMQ takes too long here), persistence:
the script starts `conductor broker --data-dir` itself and checks that durable queues
and persistent messages survive a clean restart and a kill -9, and transient ones do not.
Names are unique per run; everything is deleted afterwards. Prints PASS/FAIL per
scenario, exits 1 if any failed.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pika
import pika.exceptions as pe

from interop import Failure, Resources, Suite, check

SUITE = Suite("features", "pika features")
scenario = SUITE.scenario
name = SUITE.name


class Ctx(Resources):
    def __init__(self, url, binary):
        super().__init__(url)
        self.binary = binary

    def connect(self, url=None):
        connection = pika.BlockingConnection(pika.URLParameters(url or self.url))
        self.connections.append(connection)
        return connection

    def channel(self):
        return self.connect().channel()

    def queue(self, channel, kind, **arguments):
        queue = name(kind)
        channel.queue_declare(queue, arguments=arguments or None)
        self.queues.append(queue)
        return queue

    def dead_letter_target(self, channel):
        exchange = name("dlx")
        channel.exchange_declare(exchange, exchange_type="fanout")
        self.exchanges.append(exchange)
        queue = self.queue(channel, "dead")
        channel.queue_bind(queue, exchange)
        return exchange, queue


def get_eventually(channel, queue, wait=5.0):
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            return method, properties, body
        channel.connection.sleep(0.02)
    raise Failure(f"nothing arrived in {queue} within {wait}s")


def drain(channel, queue):
    bodies = []
    for _ in range(1000):
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        bodies.append(body.decode())
    return bodies


def first_death(properties):
    deaths = (properties.headers or {}).get("x-death")
    check(isinstance(deaths, list) and deaths, f"no x-death header: {properties.headers}")
    return deaths[0]


@scenario
def message_ttl_dead_letters_with_x_death(ctx):
    channel = ctx.channel()
    dlx, dead = ctx.dead_letter_target(channel)
    queue = ctx.queue(channel, "ttl", **{"x-message-ttl": 100, "x-dead-letter-exchange": dlx})
    channel.basic_publish("", queue, b"short-lived")
    method, properties, body = get_eventually(channel, dead)
    check(body == b"short-lived", f"body {body!r}")
    death = first_death(properties)
    check(death.get("reason") == "expired", f"x-death {death}")
    check(death.get("queue") == queue, f"x-death {death}")
    check(death.get("count") == 1, f"x-death {death}")
    check(death.get("routing-keys") == [queue], f"x-death {death}")
    check(death.get("exchange") == "", f"x-death {death}")
    check(properties.headers.get("x-first-death-reason") == "expired", f"headers {properties.headers}")
    check(method.exchange == dlx, f"delivered from {method.exchange}")


@scenario
def per_message_expiration(ctx):
    channel = ctx.channel()
    target = ctx.queue(channel, "expired")
    queue = ctx.queue(channel, "expiration", **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": target})
    channel.basic_publish("", queue, b"soon", pika.BasicProperties(expiration="30"))
    method, properties, body = get_eventually(channel, target)
    check(body == b"soon", f"body {body!r}")
    check(properties.expiration is None, f"expiration still set: {properties.expiration}")
    death = first_death(properties)
    check(death.get("original-expiration") == "30", f"x-death {death}")
    check(method.routing_key == target, f"routing key {method.routing_key}")


@scenario
def rejected_messages_dead_letter(ctx):
    channel = ctx.channel()
    dlx, dead = ctx.dead_letter_target(channel)
    queue = ctx.queue(channel, "rejected", **{"x-dead-letter-exchange": dlx})
    channel.basic_publish("", queue, b"no thanks", pika.BasicProperties(headers={"app": "kept"}))
    method, _, _ = get_eventually_unacked(channel, queue)
    channel.basic_reject(method.delivery_tag, requeue=False)
    _, properties, body = get_eventually(channel, dead)
    check(body == b"no thanks", f"body {body!r}")
    check(properties.headers.get("app") == "kept", f"headers {properties.headers}")
    check(first_death(properties).get("reason") == "rejected", f"headers {properties.headers}")


def get_eventually_unacked(channel, queue, wait=5.0):
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue, auto_ack=False)
        if method is not None:
            return method, properties, body
        channel.connection.sleep(0.02)
    raise Failure(f"nothing arrived in {queue} within {wait}s")


@scenario
def max_length_drop_head(ctx):
    channel = ctx.channel()
    dlx, dead = ctx.dead_letter_target(channel)
    queue = ctx.queue(channel, "maxlen", **{"x-max-length": 2, "x-dead-letter-exchange": dlx})
    channel.confirm_delivery()
    for index in range(1, 6):
        channel.basic_publish("", queue, f"m{index}".encode())
    check(drain(channel, queue) == ["m4", "m5"], "kept the wrong messages")
    dropped = [get_eventually(channel, dead) for _ in range(3)]
    check([body.decode() for _, _, body in dropped] == ["m1", "m2", "m3"], f"dead-lettered {dropped}")
    check(all(first_death(p).get("reason") == "maxlen" for _, p, _ in dropped), "reason is not maxlen")


@scenario
def max_length_reject_publish_nacks(ctx):
    channel = ctx.channel()
    queue = ctx.queue(channel, "reject", **{"x-max-length": 2, "x-overflow": "reject-publish"})
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"m1")
    channel.basic_publish("", queue, b"m2")
    try:
        channel.basic_publish("", queue, b"m3")
        raise Failure("the third publish was confirmed, not nacked")
    except pe.NackError:
        pass
    check(drain(channel, queue) == ["m1", "m2"], "queue content")


@scenario
def max_length_reject_publish_dlx_nacks_and_dead_letters(ctx):
    channel = ctx.channel()
    dlx, dead = ctx.dead_letter_target(channel)
    queue = ctx.queue(channel, "reject-dlx", **{"x-max-length": 1, "x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": dlx})
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"m1")
    try:
        channel.basic_publish("", queue, b"m2")
        raise Failure("the second publish was confirmed, not nacked")
    except pe.NackError:
        pass
    _, properties, body = get_eventually(channel, dead)
    check(body == b"m2", f"dead-lettered {body!r}")
    death = first_death(properties)
    check(death.get("reason") == "maxlen" and death.get("queue") == queue, f"x-death {death}")
    check(drain(channel, queue) == ["m1"], "queue content")


@scenario
def expired_self_cycle_is_dropped(ctx):
    # TTL, dead-lettered through the default exchange under its own name: back into the
    # same queue. With no rejection in the cycle the broker drops it after one death.
    channel = ctx.channel()
    queue = ctx.queue(channel, "self-cycle", **{"x-message-ttl": 50, "x-dead-letter-exchange": ""})
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"round and round")
    deadline = time.monotonic() + 5
    while channel.queue_declare(queue, passive=True).method.message_count != 0 and time.monotonic() < deadline:
        channel.connection.sleep(0.02)
    for _ in range(5):
        channel.connection.sleep(0.1)
        count = channel.queue_declare(queue, passive=True).method.message_count
        check(count == 0, f"the message is still circulating ({count} in {queue})")


@scenario
def max_length_bytes(ctx):
    channel = ctx.channel()
    queue = ctx.queue(channel, "maxbytes", **{"x-max-length-bytes": 10})
    channel.confirm_delivery()
    for body in (b"aaaaa", b"bbbbb", b"ccccc"):
        channel.basic_publish("", queue, body)
    check(drain(channel, queue) == ["bbbbb", "ccccc"], "kept the wrong messages")


@scenario
def priorities(ctx):
    channel = ctx.channel()
    queue = ctx.queue(channel, "priority", **{"x-max-priority": 10})
    channel.confirm_delivery()
    for body, priority in (("p1", 1), ("p5", 5), ("p9", 9), ("p0", 0), ("p5b", 5)):
        channel.basic_publish("", queue, body.encode(), pika.BasicProperties(priority=priority))
    channel.basic_publish("", queue, b"none")
    check(drain(channel, queue) == ["p9", "p5", "p5b", "p1", "p0", "none"], "priority order")


class OwnBroker:
    """`conductor broker --data-dir DIR` on a free port, restartable on the same directory."""

    def __init__(self, binary, directory):
        self.binary = binary
        self.directory = directory
        self.process = None
        self.url = None

    def start(self):
        self.process = subprocess.Popen(
            [self.binary, "broker", "--listen", "127.0.0.1:0", "--data-dir", self.directory, "--log-level", "error"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        match = re.search(r"amqp://([\d.]+):(\d+)", line)
        check(match is not None, f"no listening line: {line!r}")
        self.url = f"amqp://guest:guest@{match.group(1)}:{match.group(2)}/%2F"

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@scenario
def persistence_across_restart(ctx):
    if not ctx.binary:
        print("  (skipped: needs --broker-binary; restarting RabbitMQ is not part of this run)", flush=True)
        return
    directory = tempfile.mkdtemp(prefix="conductor-pika-persist-")
    broker = OwnBroker(ctx.binary, directory)
    try:
        broker.start()
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.exchange_declare("orders", exchange_type="topic", durable=True)
        channel.queue_declare("orders.all", durable=True)
        channel.queue_bind("orders.all", "orders", "order.#")
        channel.queue_declare("transient.q", durable=False)
        channel.confirm_delivery()
        for index in range(20):
            channel.basic_publish("orders", "order.new", f"p{index}".encode(), pika.BasicProperties(delivery_mode=2))
        channel.basic_publish("orders", "order.new", b"transient", pika.BasicProperties(delivery_mode=1))
        channel.basic_publish("", "transient.q", b"gone", pika.BasicProperties(delivery_mode=2))
        # Five acked for good, two delivered and never acked.
        for index in range(7):
            method, _, body = channel.basic_get("orders.all", auto_ack=False)
            check(body == f"p{index}".encode(), f"got {body!r}")
            if index < 5:
                channel.basic_ack(method.delivery_tag)
        channel.basic_publish("orders", "order.new", b"marker", pika.BasicProperties(delivery_mode=2))
        # kill -9 with two deliveries unacked: they must come back, redelivered.
        broker.stop(signal.SIGKILL)
        broker.start()
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        ok = channel.queue_declare("orders.all", passive=True)
        check(ok.method.message_count == 16, f"{ok.method.message_count} messages after kill -9, expected 16")
        try:
            channel.queue_declare("transient.q", passive=True)
            raise Failure("a non-durable queue survived")
        except pe.ChannelClosedByBroker as error:
            check(error.reply_code == 404, f"reply {error.reply_code}")
        channel = connection.channel()
        method, properties, body = channel.basic_get("orders.all", auto_ack=True)
        check(body == b"p5" and method.redelivered, f"first after restart: {body!r} redelivered={method.redelivered}")
        check(properties.delivery_mode == 2, "delivery mode lost")
        connection.close()
        # A clean restart keeps the rest, and the binding still routes.
        broker.stop(signal.SIGTERM)
        broker.start()
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("orders", "order.late", b"late", pika.BasicProperties(delivery_mode=2))
        bodies = drain(channel, "orders.all")
        expected = [f"p{i}" for i in range(6, 20)] + ["marker", "late"]
        check(bodies == expected, f"after clean restart: {bodies}")
        connection.close()
    finally:
        broker.stop(signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", default=os.environ.get("CONDUCTOR_INTEROP_URL"))
    parser.add_argument("--broker-binary", help="conductor binary, for the persistence scenario (our broker only)")
    arguments = parser.parse_args()
    if not arguments.url:
        parser.error("give the broker URL (or set CONDUCTOR_INTEROP_URL)")
    return SUITE.run(SUITE.scenarios, lambda: Ctx(arguments.url, arguments.broker_binary))


if __name__ == "__main__":
    sys.exit(main())
