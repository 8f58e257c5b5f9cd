#!/usr/bin/env python3
"""Interop scenarios with pika (a real third-party AMQP 0-9-1 client) against any broker.

    python3 Tests/Interop/run_pika.py amqp://guest:guest@127.0.0.1:5673/%2F
    python3 Tests/Interop/run_pika.py URL -k topic -k headers   # only scenarios whose name contains a word
    python3 Tests/Interop/run_pika.py --list

The URL may also come from CONDUCTOR_INTEROP_URL. Every scenario asserts real outcomes,
runs under its own time limit, uses queue/exchange names unique to this run (so reruns
against a long-lived RabbitMQ do not collide) and cleans up after itself. The runner
prints PASS/FAIL per scenario and exits 1 if any failed, 2 on a usage error.
"""

import argparse
import os
import sys
import time
import uuid

import pika
import pika.exceptions as pe

from interop import Failure, Resources, Suite, check

SUITE = Suite("interop", "pika interop")
scenario = SUITE.scenario
name = SUITE.name


class Ctx(Resources):
    """Per-scenario resources; everything opened here is closed afterwards."""

    def connect(self, **overrides):
        connection = pika.BlockingConnection(self.params(**overrides))
        self.connections.append(connection)
        return connection

    def channel(self, connection=None):
        return (connection or self.connect()).channel()

    def queue(self, channel, **kwargs):
        queue = name("q")
        channel.queue_declare(queue, **kwargs)
        self.queues.append(queue)
        return queue

    def exchange(self, channel, exchange_type, **kwargs):
        exchange = name(exchange_type)
        channel.exchange_declare(exchange, exchange_type=exchange_type, **kwargs)
        self.exchanges.append(exchange)
        return exchange


# --- helpers -------------------------------------------------------------------------

def get_bodies(channel, queue, expect, wait=3.0):
    """basic.get (auto-ack) until `expect` messages arrived (bounded), then check that no
    extra message is waiting. Returns the bodies in order."""
    bodies = []
    deadline = time.monotonic() + wait
    while len(bodies) < expect and time.monotonic() < deadline:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            channel.connection.sleep(0.02)
            continue
        bodies.append(body)
    method, _, body = channel.basic_get(queue, auto_ack=True)
    if method is not None:
        bodies.append(body)
    return bodies


def expect_channel_close(code, action, what):
    try:
        action()
    except pe.ChannelClosedByBroker as error:
        check(error.reply_code == code, f"{what}: expected reply code {code}, got {error.reply_code} {error.reply_text}")
        return error
    raise Failure(f"{what}: expected a channel close with {code}, but the call succeeded")


def message_count(connection, queue):
    channel = connection.channel()
    try:
        return channel.queue_declare(queue, passive=True).method.message_count
    finally:
        channel.close()


def collect_deliveries(connection, channel, queue, auto_ack, expect, wait):
    """Consume for at most `wait` seconds or until `expect` deliveries arrived."""
    deliveries = []
    tag = channel.basic_consume(queue, lambda ch, m, p, b: deliveries.append((m, p, b)), auto_ack=auto_ack)
    deadline = time.monotonic() + wait
    while len(deliveries) < expect and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    return tag, deliveries


# --- scenarios -----------------------------------------------------------------------

@scenario
def direct_exchange(ctx):
    channel = ctx.channel()
    exchange = ctx.exchange(channel, "direct")
    qa, qb = ctx.queue(channel), ctx.queue(channel)
    channel.queue_bind(qa, exchange, routing_key="a")
    channel.queue_bind(qb, exchange, routing_key="b")
    for key in ("a", "b", "c", "a"):
        channel.basic_publish(exchange, key, f"to-{key}".encode())
    check(get_bodies(channel, qa, 2) == [b"to-a", b"to-a"], "queue bound with 'a' must get exactly the two 'a' messages")
    check(get_bodies(channel, qb, 1) == [b"to-b"], "queue bound with 'b' must get exactly the 'b' message")


@scenario
def fanout_exchange(ctx):
    channel = ctx.channel()
    exchange = ctx.exchange(channel, "fanout")
    queues = [ctx.queue(channel) for _ in range(3)]
    for queue in queues:
        channel.queue_bind(queue, exchange, routing_key="ignored-" + queue)
    channel.basic_publish(exchange, "any-key", b"broadcast")
    for queue in queues:
        check(get_bodies(channel, queue, 1) == [b"broadcast"], f"every bound queue gets the message once ({queue})")


@scenario
def topic_exchange_wildcards(ctx):
    channel = ctx.channel()
    exchange = ctx.exchange(channel, "topic")
    star, hash_tail, hash_head = ctx.queue(channel), ctx.queue(channel), ctx.queue(channel)
    channel.queue_bind(star, exchange, routing_key="a.*.c")
    channel.queue_bind(hash_tail, exchange, routing_key="a.#")
    channel.queue_bind(hash_head, exchange, routing_key="#.z")
    for key in ("a.b.c", "a", "a.b.b.c", "x.z", "z", "a.z", "b.c", "a.b.c.d"):
        channel.basic_publish(exchange, key, key.encode())
    got = get_bodies(channel, star, 1)
    check(got == [b"a.b.c"], f"'a.*.c' must match only a.b.c, got {got}")
    got = get_bodies(channel, hash_tail, 5)
    check(got == [b"a.b.c", b"a", b"a.b.b.c", b"a.z", b"a.b.c.d"], f"'a.#' must match a, a.b.c, a.b.b.c, a.z, a.b.c.d; got {got}")
    got = get_bodies(channel, hash_head, 3)
    check(got == [b"x.z", b"z", b"a.z"], f"'#.z' must match x.z, z, a.z; got {got}")


@scenario
def headers_exchange_all_any(ctx):
    channel = ctx.channel()
    exchange = ctx.exchange(channel, "headers")
    q_all, q_any = ctx.queue(channel), ctx.queue(channel)
    wanted = {"format": "pdf", "type": "report"}
    channel.queue_bind(q_all, exchange, arguments={"x-match": "all", **wanted})
    channel.queue_bind(q_any, exchange, arguments={"x-match": "any", **wanted})
    cases = [
        ("both", {"format": "pdf", "type": "report", "extra": 1}),
        ("format-only", {"format": "pdf"}),
        ("type-only", {"type": "report", "format": "zip"}),
        ("neither", {"format": "zip"}),
        ("no-headers", None),
    ]
    for body, headers in cases:
        channel.basic_publish(exchange, "", body.encode(), pika.BasicProperties(headers=headers))
    got = get_bodies(channel, q_all, 1)
    check(got == [b"both"], f"x-match all must match only when every header matches, got {got}")
    got = get_bodies(channel, q_any, 3)
    check(got == [b"both", b"format-only", b"type-only"], f"x-match any must match when one header matches, got {got}")


@scenario
def default_exchange(ctx):
    channel = ctx.channel()
    queue = ctx.queue(channel)
    channel.basic_publish("", queue, b"via default exchange")
    check(get_bodies(channel, queue, 1) == [b"via default exchange"], "the default exchange routes by queue name")
    # The pre-declared amq.* exchanges exist and accept a passive declare.
    for exchange in ("amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"):
        channel.exchange_declare(exchange, passive=True)


@scenario
def exchange_to_exchange_binding(ctx):
    channel = ctx.channel()
    source = ctx.exchange(channel, "direct")
    destination = ctx.exchange(channel, "fanout")
    queue = ctx.queue(channel)
    channel.queue_bind(queue, destination)
    channel.exchange_bind(destination=destination, source=source, routing_key="k")
    channel.basic_publish(source, "k", b"routed")
    channel.basic_publish(source, "other", b"dropped")
    check(get_bodies(channel, queue, 1) == [b"routed"], "only the message matching the e2e binding key arrives")
    channel.exchange_unbind(destination=destination, source=source, routing_key="k")
    channel.basic_publish(source, "k", b"after-unbind")
    check(get_bodies(channel, queue, 0, wait=0.3) == [], "after exchange.unbind nothing arrives")


@scenario
def basic_ack(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    for index in range(3):
        channel.basic_publish("", queue, f"m{index}".encode())
    tag, deliveries = collect_deliveries(connection, channel, queue, auto_ack=False, expect=3, wait=5)
    check([body for _, _, body in deliveries] == [b"m0", b"m1", b"m2"], f"consumer receives 3 messages in order, got {deliveries}")
    check(all(not method.redelivered for method, _, _ in deliveries), "first deliveries are not flagged redelivered")
    channel.basic_ack(deliveries[0][0].delivery_tag)
    channel.basic_ack(deliveries[2][0].delivery_tag, multiple=True)
    channel.basic_cancel(tag)
    channel.close()
    check(message_count(connection, queue) == 0, "acked messages are gone after the channel closes")


@scenario
def nack_requeue_redelivered(ctx):
    channel = ctx.channel()
    queue = ctx.queue(channel)
    channel.basic_publish("", queue, b"again")
    method, _, body = channel.basic_get(queue)
    check(method is not None and body == b"again", "message is there")
    check(not method.redelivered, "first delivery is not redelivered")
    channel.basic_nack(method.delivery_tag, requeue=True)
    deadline = time.monotonic() + 3
    method = None
    while method is None and time.monotonic() < deadline:
        method, _, body = channel.basic_get(queue)
    check(method is not None and body == b"again", "nacked message with requeue comes back")
    check(method.redelivered, "the requeued message carries the redelivered flag")
    channel.basic_ack(method.delivery_tag)


@scenario
def reject_without_requeue(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    channel.basic_publish("", queue, b"unwanted")
    method, _, _ = channel.basic_get(queue)
    check(method is not None, "message is there")
    channel.basic_reject(method.delivery_tag, requeue=False)
    check(channel.basic_get(queue)[0] is None, "rejected message without requeue is gone")
    check(message_count(connection, queue) == 0, "queue is empty after reject")


@scenario
def qos_prefetch(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    for index in range(5):
        channel.basic_publish("", queue, f"p{index}".encode())
    channel.basic_qos(prefetch_count=2)
    _, deliveries = collect_deliveries(connection, channel, queue, auto_ack=False, expect=3, wait=1.0)
    check(len(deliveries) == 2, f"with prefetch 2 and no acks exactly 2 are delivered, got {len(deliveries)}")
    channel.basic_ack(deliveries[0][0].delivery_tag)
    deadline = time.monotonic() + 3
    while len(deliveries) < 3 and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    connection.process_data_events(time_limit=0.3)
    check(len(deliveries) == 3, f"one ack frees one slot: expected 3 deliveries, got {len(deliveries)}")
    check([b for _, _, b in deliveries] == [b"p0", b"p1", b"p2"], "deliveries keep queue order")


@scenario
def publisher_confirms(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    channel.confirm_delivery()
    for index in range(20):
        channel.basic_publish("", queue, f"c{index}".encode())  # raises unless confirmed
    check(message_count(connection, queue) == 20, "all confirmed messages are in the queue")


@scenario
def mandatory_return(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    exchange = ctx.exchange(channel, "direct")
    returned = []
    channel.add_on_return_callback(lambda ch, method, props, body: returned.append((method, body)))
    channel.basic_publish(exchange, "nobody-home", b"bounce", mandatory=True)
    deadline = time.monotonic() + 3
    while not returned and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    check(len(returned) == 1, "an unroutable mandatory message comes back as basic.return")
    method, body = returned[0]
    check(method.reply_code == 312 and body == b"bounce", f"basic.return carries 312 NO_ROUTE and the body, got {method}")
    check(method.exchange == exchange and method.routing_key == "nobody-home", "basic.return names exchange and key")
    # With confirms, pika raises UnroutableError for the same publish.
    confirm_channel = connection.channel()
    confirm_channel.confirm_delivery()
    try:
        confirm_channel.basic_publish(exchange, "nobody-home", b"bounce", mandatory=True)
    except pe.UnroutableError as error:
        check(len(error.messages) == 1 and error.messages[0].body == b"bounce", "UnroutableError carries the message")
    else:
        raise Failure("publish of an unroutable mandatory message under confirms must raise UnroutableError")
    # A routable mandatory message is not returned.
    queue = ctx.queue(confirm_channel)
    confirm_channel.basic_publish("", queue, b"fine", mandatory=True)


@scenario
def exclusive_queue_locked(ctx):
    owner = ctx.connect()
    owner_channel = owner.channel()
    queue = ctx.queue(owner_channel, exclusive=True)
    other = ctx.connect()
    expect_channel_close(405, lambda: other.channel().queue_declare(queue, exclusive=True), "declare of another connection's exclusive queue")
    expect_channel_close(405, lambda: other.channel().basic_consume(queue, lambda *a: None), "consume from another connection's exclusive queue")
    # The owner still uses it.
    owner_channel.basic_publish("", queue, b"mine")
    check(get_bodies(owner_channel, queue, 1) == [b"mine"], "the owner still uses its exclusive queue")
    owner.close()
    # The queue goes away with its connection.
    deadline = time.monotonic() + 3
    while True:
        try:
            other.channel().queue_declare(queue, passive=True)
        except pe.ChannelClosedByBroker as error:
            check(error.reply_code == 404, f"after the owner left the exclusive queue is gone (404), got {error.reply_code}")
            break
        check(time.monotonic() < deadline, "exclusive queue must be deleted when its connection closes")
        time.sleep(0.1)


@scenario
def passive_declare_missing_404(ctx):
    connection = ctx.connect()
    missing = name("missing")
    expect_channel_close(404, lambda: connection.channel().queue_declare(missing, passive=True), "passive declare of a missing queue")
    expect_channel_close(404, lambda: connection.channel().exchange_declare(missing, passive=True), "passive declare of a missing exchange")
    check(connection.is_open, "a channel error leaves the connection open")
    channel = connection.channel()
    queue = ctx.queue(channel)
    check(channel.queue_declare(queue, passive=True).method.queue == queue, "the connection is still usable")


@scenario
def one_mib_message(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    payload = os.urandom(1024 * 1024)
    properties = pika.BasicProperties(content_type="application/octet-stream", message_id="big", headers={"n": 1})
    channel.basic_publish("", queue, payload, properties)
    got = get_bodies(channel, queue, 1, wait=10)
    check(len(got) == 1 and len(got[0]) == len(payload), f"one 1 MiB message comes back, got sizes {[len(b) for b in got]}")
    check(got[0] == payload, "the 1 MiB body is byte-exact")
    channel.basic_publish("", queue, payload, properties)
    _, deliveries = collect_deliveries(connection, channel, queue, auto_ack=True, expect=1, wait=10)
    check(len(deliveries) == 1 and deliveries[0][2] == payload, "the 1 MiB body is byte-exact through a consumer too")
    check(deliveries[0][1].message_id == "big" and deliveries[0][1].headers == {"n": 1}, "properties survive")


@scenario
def wrong_password_refused(ctx):
    params = ctx.params()
    params.credentials = pika.PlainCredentials(params.credentials.username, "definitely-wrong-" + uuid.uuid4().hex[:6])
    try:
        connection = pika.BlockingConnection(params)
    except (pe.ProbableAuthenticationError, pe.AuthenticationError) as error:
        # The broker must say why (connection.close 403), not just drop the socket.
        check("403" in str(error), f"refusal must be a connection.close with 403 ACCESS_REFUSED: {error!r}")
        return
    except pe.ConnectionClosedByBroker as error:
        check(error.reply_code == 403, f"wrong password must be refused with 403, got {error.reply_code}")
        return
    connection.close()
    raise Failure("a wrong password must be refused, but the connection opened")


@scenario
def basic_get_and_get_empty(ctx):
    channel = ctx.channel()
    queue = ctx.queue(channel)
    method, properties, body = channel.basic_get(queue)
    check(method is None and body is None, "basic.get on an empty queue answers get-empty")
    channel.basic_publish("", queue, b"one", pika.BasicProperties(correlation_id="c-1", delivery_mode=2))
    channel.basic_publish("", queue, b"two")
    deadline = time.monotonic() + 3
    method = None
    while method is None and time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue)
    check(method is not None and body == b"one", "basic.get returns the first message")
    check(method.message_count == 1, f"get-ok message_count counts the messages left, got {method.message_count}")
    check(method.routing_key == queue and method.exchange == "", "get-ok names exchange and routing key")
    check(properties.correlation_id == "c-1" and properties.delivery_mode == 2, "properties survive basic.get")
    channel.basic_ack(method.delivery_tag)
    method, _, body = channel.basic_get(queue, auto_ack=True)
    check(method is not None and body == b"two" and method.message_count == 0, "second get returns the second message")
    check(channel.basic_get(queue)[0] is None, "then the queue is empty again")


@scenario
def purge_count(ctx):
    channel = ctx.channel()
    queue = ctx.queue(channel)
    for index in range(3):
        channel.basic_publish("", queue, f"x{index}".encode())
    deadline = time.monotonic() + 3
    while channel.queue_declare(queue, passive=True).method.message_count < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    purged = channel.queue_purge(queue).method.message_count
    check(purged == 3, f"purge-ok reports 3 purged messages, got {purged}")
    check(channel.basic_get(queue)[0] is None, "queue is empty after purge")


@scenario
def queue_delete_if_empty_refused(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    channel.basic_publish("", queue, b"keep me")
    deadline = time.monotonic() + 3
    while message_count(connection, queue) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    expect_channel_close(406, lambda: channel.queue_delete(queue, if_empty=True), "delete if-empty of a non-empty queue")
    check(message_count(connection, queue) == 1, "the refused delete kept the queue and its message")
    deleted = connection.channel().queue_delete(queue).method.message_count
    check(deleted == 1, f"delete-ok reports the 1 message deleted, got {deleted}")
    expect_channel_close(404, lambda: connection.channel().queue_declare(queue, passive=True), "the deleted queue")


@scenario
def tx_commit_rollback(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    channel.tx_select()
    channel.basic_publish("", queue, b"rolled back")
    check(message_count(connection, queue) == 0, "uncommitted publish is not visible")
    channel.tx_rollback()
    check(message_count(connection, queue) == 0, "rolled back publish never arrives")
    channel.basic_publish("", queue, b"committed")
    channel.tx_commit()
    check(message_count(connection, queue) == 1, "committed publish arrives")
    reader = connection.channel()
    check(get_bodies(reader, queue, 1) == [b"committed"], "only the committed message is in the queue")
    # Acks inside a transaction take effect on commit only.
    channel.basic_publish("", queue, b"ack-in-tx")
    channel.tx_commit()
    method, _, _ = channel.basic_get(queue)
    check(method is not None, "message for the tx ack is there")
    channel.basic_ack(method.delivery_tag)
    channel.tx_rollback()
    channel.close()
    check(message_count(connection, queue) == 1, "a rolled back ack leaves the message unacked; it returns when the channel closes")


@scenario
def server_named_queue(ctx):
    channel = ctx.channel()
    result = channel.queue_declare("", exclusive=True)
    queue = result.method.queue
    check(isinstance(queue, str) and len(queue) > 0, f"declare with an empty name returns a generated name, got {queue!r}")
    second = channel.queue_declare("", exclusive=True).method.queue
    check(second != queue, "two server-named queues get different names")
    channel.basic_publish("", queue, b"to generated")
    check(get_bodies(channel, queue, 1) == [b"to generated"], "the generated queue is routable by its name")


@scenario
def unacked_requeued_on_connection_close(ctx):
    consumer = ctx.connect()
    channel = consumer.channel()
    queue = ctx.queue(channel)
    for index in range(2):
        channel.basic_publish("", queue, f"u{index}".encode())
    _, deliveries = collect_deliveries(consumer, channel, queue, auto_ack=False, expect=2, wait=5)
    check(len(deliveries) == 2, f"consumer got both messages, got {len(deliveries)}")
    consumer.close()
    other = ctx.connect()
    reader = other.channel()
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        method, _, body = reader.basic_get(queue, auto_ack=True)
        if method is None:
            other.sleep(0.05)
            continue
        got.append((body, method.redelivered))
    check(got == [(b"u0", True), (b"u1", True)], f"unacked messages return in order, flagged redelivered; got {got}")


@scenario
def heartbeat_keeps_idle_connection(ctx):
    connection = ctx.connect(heartbeat=2)
    negotiated = connection._impl.params.heartbeat
    check(negotiated == 2, f"heartbeat 2 negotiated, got {negotiated}")
    started = time.monotonic()
    connection.sleep(6)  # idle, but pika pumps I/O and heartbeats while sleeping
    check(time.monotonic() - started >= 5.9, "stayed idle for 6 s")
    check(connection.is_open, "an idle connection with heartbeats stays open")
    channel = connection.channel()
    queue = ctx.queue(channel)
    channel.basic_publish("", queue, b"still here")
    check(get_bodies(channel, queue, 1) == [b"still here"], "the connection still works after idling")


@scenario
def publish_to_missing_exchange_404(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    channel.confirm_delivery()  # makes the publish synchronous, so the close is seen here
    missing = name("nowhere")
    try:
        channel.basic_publish(missing, "k", b"lost")
        connection.process_data_events(time_limit=0.5)
    except pe.ChannelClosedByBroker as error:
        check(error.reply_code == 404, f"publish to a missing exchange closes the channel with 404, got {error.reply_code}")
    else:
        check(channel.is_closed, "publish to a missing exchange must close the channel (404)")
    check(connection.is_open, "only the channel is closed")


@scenario
def exchange_redeclare_mismatch_406(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    exchange = ctx.exchange(channel, "direct")
    channel.exchange_declare(exchange, exchange_type="direct")  # same arguments: fine
    expect_channel_close(406, lambda: connection.channel().exchange_declare(exchange, exchange_type="fanout"),
                         "redeclare of a direct exchange as fanout")
    queue = ctx.queue(connection.channel())
    expect_channel_close(406, lambda: connection.channel().queue_declare(queue, durable=True),
                         "redeclare of a transient queue as durable")


@scenario
def nack_multiple(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    for index in range(3):
        channel.basic_publish("", queue, f"n{index}".encode())
    _, deliveries = collect_deliveries(connection, channel, queue, auto_ack=False, expect=3, wait=5)
    check(len(deliveries) == 3, f"three deliveries, got {len(deliveries)}")
    channel.basic_nack(deliveries[1][0].delivery_tag, multiple=True, requeue=False)
    channel.basic_ack(deliveries[2][0].delivery_tag)
    channel.close()
    check(message_count(connection, queue) == 0, "nack multiple (no requeue) dropped the first two; ack took the third")


@scenario
def basic_recover_requeue(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    channel.basic_publish("", queue, b"recover me")
    _, deliveries = collect_deliveries(connection, channel, queue, auto_ack=False, expect=1, wait=5)
    check(len(deliveries) == 1 and not deliveries[0][0].redelivered, "first delivery")
    channel.basic_recover(requeue=True)
    deadline = time.monotonic() + 5
    while len(deliveries) < 2 and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    check(len(deliveries) == 2, f"basic.recover redelivers the unacked message, got {len(deliveries)} deliveries")
    check(deliveries[1][0].redelivered and deliveries[1][2] == b"recover me", "recovered delivery is flagged redelivered")
    channel.basic_ack(deliveries[1][0].delivery_tag)


@scenario
def consumer_cancelled_when_queue_deleted(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    cancelled = []
    channel.add_on_cancel_callback(lambda method: cancelled.append(method))
    channel.basic_consume(queue, lambda *a: None, auto_ack=True)
    connection.channel().queue_delete(queue)
    deadline = time.monotonic() + 3
    while not cancelled and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    check(len(cancelled) == 1, "deleting the queue sends basic.cancel to its consumer (consumer_cancel_notify)")
    check(channel.is_open, "the consumer's channel stays open")


@scenario
def exclusive_consumer(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    channel.basic_consume(queue, lambda *a: None, auto_ack=True, exclusive=True)
    expect_channel_close(403, lambda: connection.channel().basic_consume(queue, lambda *a: None),
                         "a second consumer on a queue with an exclusive consumer")


@scenario
def auto_delete_queue(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel, auto_delete=True)
    tag = channel.basic_consume(queue, lambda *a: None, auto_ack=True)
    check(channel.queue_declare(queue, passive=True).method.consumer_count == 1, "declare-ok counts the consumer")
    channel.basic_cancel(tag)
    deadline = time.monotonic() + 3
    while True:
        try:
            connection.channel().queue_declare(queue, passive=True)
        except pe.ChannelClosedByBroker as error:
            check(error.reply_code == 404, f"auto-delete queue is gone after its last consumer left, got {error.reply_code}")
            break
        check(time.monotonic() < deadline, "auto-delete queue must go away when its last consumer cancels")
        time.sleep(0.1)


@scenario
def fifo_order_many_messages(ctx):
    connection = ctx.connect()
    channel = connection.channel()
    queue = ctx.queue(channel)
    count = 2000
    for index in range(count):
        channel.basic_publish("", queue, str(index).encode())
    channel.basic_qos(prefetch_count=100)
    received = []

    def on_message(ch, method, properties, body):
        received.append(int(body))
        if len(received) % 50 == 0:
            ch.basic_ack(method.delivery_tag, multiple=True)

    channel.basic_consume(queue, on_message)
    deadline = time.monotonic() + 20
    while len(received) < count and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    check(len(received) == count, f"all {count} messages arrive with prefetch 100 and batched acks, got {len(received)}")
    check(received == list(range(count)), "one queue, one consumer: FIFO order")


# --- runner --------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", default=os.environ.get("CONDUCTOR_INTEROP_URL"))
    parser.add_argument("-k", action="append", default=[], help="run only scenarios whose name contains this")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        print("\n".join(fn.__name__ for fn in SUITE.scenarios))
        return 0
    if not args.url:
        parser.error("give the broker URL as an argument or CONDUCTOR_INTEROP_URL")
    selected = [fn for fn in SUITE.scenarios if not args.k or any(word in fn.__name__ for word in args.k)]
    if not selected:
        parser.error("no scenario matches " + ", ".join(args.k))
    print(f"pika {pika.__version__} interop against {args.url} (run id {SUITE.run_id})", flush=True)
    return SUITE.run(selected, lambda: Ctx(args.url))


if __name__ == "__main__":
    sys.exit(main())
