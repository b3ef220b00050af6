#!/usr/bin/env python3
"""Interop scenarios run with the real asyncio-nats-streaming 0.4.0 client
(asyncio-nats-client 0.11.5, Python 3.9) against a STAN server (stanchion, or
the reference nats-streaming-server).

Usage: python scenario.py <nats_url> <cluster_id> <scenario> [phase]
  (or env NATS_URL, STAN_CLUSTER_ID, SCENARIO, PHASE; argv wins)
Optional env: INTEROP_TIMEOUT_MS (whole-run bound, default 20000),
              INTEROP_RUN_ID (suffix for channel names and client IDs).

Prints exactly one JSON line on stdout: {"client":"python","scenario":...,"ok":true,...}
and exits 0; on failure prints {"ok":false,"error":...} and exits 1 (2 on the
whole-run timeout, 64 on bad usage). Every byte on the wire is produced and
parsed by the third-party client; this file only drives it.
"""

import asyncio
import json
import os
import signal
import sys
import time

from nats.aio.client import Client as NATS
from stan.aio.client import Client as STAN
import stan.aio.client as stan_client

ARGV = sys.argv[1:]
NATS_URL = (ARGV[0] if len(ARGV) > 0 else None) or os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
CLUSTER_ID = (ARGV[1] if len(ARGV) > 1 else None) or os.environ.get("STAN_CLUSTER_ID", "test-cluster")
SCENARIO = (ARGV[2] if len(ARGV) > 2 else None) or os.environ.get("SCENARIO", "")
PHASE = (ARGV[3] if len(ARGV) > 3 else None) or os.environ.get("PHASE", "")
TIMEOUT_S = int(os.environ.get("INTEROP_TIMEOUT_MS", "20000")) / 1000.0
RUN_ID = os.environ.get("INTEROP_RUN_ID", "")

QUIET_S = 0.5  # quiet period after the expected messages, to catch extra deliveries
WAIT_S = 5.0  # bound for one wait on deliveries or acks

# Record every id the client generates, so a PubAck's guid can be compared
# with the guid the client put in its PubMsg (publish() does not return it).
GENERATED = []
_orig_new_guid = stan_client.new_guid


def _recording_new_guid():
    g = _orig_new_guid()
    GENERATED.append(g)
    return g


stan_client.new_guid = _recording_new_guid


class ScenarioError(Exception):
    """An expectation of a scenario does not hold."""


def check(cond, msg):
    if not cond:
        raise ScenarioError(msg)


def client_id(role):
    return "py-%s%s" % (role, "-" + RUN_ID if RUN_ID else "")


def channel_of(scenario):
    return "interop.py.%s%s" % (scenario, "." + RUN_ID if RUN_ID else "")


def payloads(first, last):
    return [("msg-%d" % i).encode() for i in range(first, last + 1)]


class Conn:
    """One NATS connection carrying one STAN client."""

    def __init__(self, role):
        self.role = role
        self.cid = client_id(role)
        self.nc = NATS()
        self.sc = STAN()
        self.errors = []

    async def connect(self):
        async def on_err(e):
            self.errors.append(str(e))

        await self.nc.connect(servers=[NATS_URL], name="py-" + self.cid, allow_reconnect=False, error_cb=on_err)
        try:
            await self.sc.connect(CLUSTER_ID, self.cid, nats=self.nc)
        except Exception as e:
            await self.nc.close()
            raise ScenarioError("connect %s: %s: %s" % (self.cid, type(e).__name__, e))
        return self

    async def close(self):
        """STAN close (CloseRequest) then NATS close; a CloseResponse error fails the scenario."""
        try:
            await self.sc.close()
        except Exception as e:
            raise ScenarioError("close %s: %s: %s" % (self.cid, type(e).__name__, e))
        finally:
            await self.nc.close()

    async def drop(self):
        """Close only the NATS connection: no CloseRequest (a client crash)."""
        await self.nc.flush()
        await self.nc.close()

    async def publish_all(self, channel, datas):
        """Sync publishes, each waiting for its PubAck; checks guid echo and no error."""
        guids = []
        for d in datas:
            before = len(GENERATED)
            try:
                ack = await asyncio.wait_for(self.sc.publish(channel, d, ack_wait=WAIT_S), WAIT_S + 1)
            except Exception as e:
                raise ScenarioError("publish %s to %s: %s: %s" % (d, channel, type(e).__name__, e))
            sent_guid = GENERATED[before] if len(GENERATED) > before else None
            check(ack.error == "", "publish %s to %s: PubAck error %r" % (d, channel, ack.error))
            check(ack.guid != "", "publish %s: PubAck without guid" % d)
            check(ack.guid == sent_guid, "publish %s: PubAck guid %r != published guid %r" % (d, ack.guid, sent_guid))
            guids.append(ack.guid)
        return guids

    async def subscribe(self, channel, name, on_message=None, **kw):
        col = Collector(name)

        async def cb(msg):
            rec = col.push(msg)
            if on_message is not None:
                await on_message(rec, msg)

        async def error_cb(e):
            col.errors.append(str(e))

        try:
            sub = await self.sc.subscribe(channel, cb=cb, error_cb=error_cb, **kw)
        except Exception as e:
            raise ScenarioError("subscribe %s: %s: %s" % (channel, type(e).__name__, e))
        return sub, col


class Collector:
    """Everything a subscription received, in order."""

    def __init__(self, name):
        self.name = name
        self.t0 = time.monotonic()
        self.msgs = []
        self.errors = []

    def push(self, msg):
        rec = {
            "seq": msg.proto.sequence,
            "data": msg.proto.data.decode(errors="replace"),
            "redelivered": msg.proto.redelivered,
            "t_ms": round((time.monotonic() - self.t0) * 1000.0, 1),
        }
        self.msgs.append(rec)
        return rec

    def seqs(self):
        return [m["seq"] for m in self.msgs]

    async def wait_count(self, n, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while len(self.msgs) < n:
            if time.monotonic() > deadline:
                raise ScenarioError("%s: waiting for %d messages: timed out after %.1f s (got seqs %s)"
                                    % (self.name, n, timeout, self.seqs()))
            await asyncio.sleep(0.01)


def check_payloads(msgs):
    for m in msgs:
        check(m["data"] == "msg-%d" % m["seq"], "seq %d carries %r, expected 'msg-%d'" % (m["seq"], m["data"], m["seq"]))


# ------------------------------------------------------------------ scenarios

async def connect_close():
    c = await Conn("cc").connect()
    await c.close()
    return {}


async def publish():
    """Sync-acked publishes, then pipelined ones (ack handlers); guids echoed, no error; stored in order."""
    ch = channel_of("publish")
    c = await Conn("pub").connect()
    guids = await c.publish_all(ch, payloads(1, 5))
    # Pipelined: ack handlers, all five PubMsgs out before waiting.
    loop = asyncio.get_event_loop()
    futs = []
    for d in payloads(6, 10):
        fut = loop.create_future()

        async def handler(ack, fut=fut):
            fut.set_result(ack)

        await c.sc.publish(ch, d, ack_handler=handler)
        futs.append(fut)
    try:
        acks = await asyncio.wait_for(asyncio.gather(*futs), WAIT_S)
    except asyncio.TimeoutError:
        raise ScenarioError("pipelined publishes: PubAcks missing after %.1f s" % WAIT_S)
    for a in acks:
        check(a.error == "", "pipelined publish: PubAck error %r" % a.error)
        check(a.guid != "", "pipelined publish: PubAck without guid")
    guids += [a.guid for a in acks]
    check(len(set(guids)) == len(guids), "guids are not unique: %s" % guids)
    _, col = await c.subscribe(ch, "verify", deliver_all_available=True)
    await col.wait_count(10)
    await asyncio.sleep(QUIET_S)
    check(col.seqs() == list(range(1, 11)), "stored sequences %s, expected 1..10" % col.seqs())
    check_payloads(col.msgs)
    await c.close()
    return {"published": len(guids), "guids": guids, "seqs": col.seqs()}


async def start_position(name, sub_kw, expected, after=None):
    """msg-1..5 published, then a plain subscription with `sub_kw`; exactly `expected` arrives."""
    ch = channel_of(name)
    c = await Conn("sub").connect()
    await c.publish_all(ch, payloads(1, 5))
    _, col = await c.subscribe(ch, name, **sub_kw)
    if after is not None:
        await after(c, ch)
    await col.wait_count(len(expected))
    await asyncio.sleep(QUIET_S)
    check(col.seqs() == expected, "%s: received seqs %s, expected %s" % (name, col.seqs(), expected))
    check_payloads(col.msgs)
    check(not any(m["redelivered"] for m in col.msgs), "%s: a first delivery is flagged redelivered" % name)
    await c.close()
    return {"seqs": col.seqs(), "expected": expected}


async def start_new_only():
    return await start_position("start_new_only", {"start_at": "new_only"}, [6, 7],
                                lambda c, ch: c.publish_all(ch, payloads(6, 7)))


async def start_last_received():
    return await start_position("start_last_received", {"start_at": "last_received"}, [5, 6],
                                lambda c, ch: c.publish_all(ch, payloads(6, 6)))


async def start_sequence():
    return await start_position("start_sequence", {"start_at": "sequence", "sequence": 3}, [3, 4, 5])


async def start_first():
    return await start_position("start_first", {"start_at": "first"}, [1, 2, 3, 4, 5])


async def start_time_delta():
    """msg-1,2; 2.5 s later mark; msg-3..5; subscribe with time=mark-1 s.

    The client sends startTimeDelta = int(now - time) whole seconds (= 1 s
    here), so the server's start time is about mark - 1 s + (time since mark):
    3..5 are newer, 1,2 are 2.5 s older.
    """
    name = "start_time_delta"
    ch = channel_of(name)
    c = await Conn("sub").connect()
    await c.publish_all(ch, payloads(1, 2))
    await asyncio.sleep(2.5)
    mark = time.time()
    await c.publish_all(ch, payloads(3, 5))
    _, col = await c.subscribe(ch, name, start_at="time", time=mark - 1.0)
    await col.wait_count(3)
    await asyncio.sleep(QUIET_S)
    check(col.seqs() == [3, 4, 5], "%s: received seqs %s, expected [3, 4, 5]" % (name, col.seqs()))
    check_payloads(col.msgs)
    await c.close()
    return {"seqs": col.seqs(), "expected": [3, 4, 5]}


async def queue():
    """Two members of one queue group on separate connections share 10 messages, each exactly once."""
    ch = channel_of("queue")
    q1 = await Conn("q1").connect()
    q2 = await Conn("q2").connect()
    p = await Conn("qpub").connect()
    _, c1 = await q1.subscribe(ch, "q1", queue="grp")
    _, c2 = await q2.subscribe(ch, "q2", queue="grp")
    await p.publish_all(ch, payloads(1, 10))
    deadline = time.monotonic() + WAIT_S
    while len(c1.msgs) + len(c2.msgs) < 10:
        if time.monotonic() > deadline:
            raise ScenarioError("queue: waiting for 10 deliveries timed out (q1 %s, q2 %s)" % (c1.seqs(), c2.seqs()))
        await asyncio.sleep(0.01)
    await asyncio.sleep(QUIET_S)
    s1, s2 = c1.seqs(), c2.seqs()
    check(sorted(s1 + s2) == list(range(1, 11)), "queue: q1 %s + q2 %s is not exactly 1..10 once each" % (s1, s2))
    check(len(s1) > 0 and len(s2) > 0, "queue: one member got nothing (q1 %s, q2 %s)" % (s1, s2))
    check_payloads(c1.msgs + c2.msgs)
    check(not any(m["redelivered"] for m in c1.msgs + c2.msgs), "queue: a delivery is flagged redelivered")
    await q1.close()
    await q2.close()
    await p.close()
    return {"q1": s1, "q2": s2}


async def durable_queue():
    """Durable queue group: q1 and q2 (durable "dur", group "grp", first) share msg-1..4 and
    ack them; both close (the group's state stays); msg-5, msg-6 are published; q3 joins
    the same durable group and gets exactly 5 and 6."""
    ch = channel_of("durable_queue")
    p = await Conn("dqpub").connect()
    q1 = await Conn("dq1").connect()
    q2 = await Conn("dq2").connect()
    _, c1 = await q1.subscribe(ch, "dq1", queue="grp", durable_name="dur", start_at="first")
    _, c2 = await q2.subscribe(ch, "dq2", queue="grp", durable_name="dur", start_at="first")
    await p.publish_all(ch, payloads(1, 4))
    deadline = time.monotonic() + WAIT_S
    while len(c1.msgs) + len(c2.msgs) < 4:
        if time.monotonic() > deadline:
            raise ScenarioError("durable queue: 4 deliveries timed out (q1 %s, q2 %s)" % (c1.seqs(), c2.seqs()))
        await asyncio.sleep(0.01)
    await asyncio.sleep(QUIET_S)
    first = sorted(c1.seqs() + c2.seqs())
    check(first == [1, 2, 3, 4], "durable queue: members got %s, expected 1..4 once each" % first)
    await q1.close()
    await q2.close()
    await p.publish_all(ch, payloads(5, 6))
    q3 = await Conn("dq3").connect()
    _, c3 = await q3.subscribe(ch, "dq3", queue="grp", durable_name="dur", start_at="first")
    await c3.wait_count(2)
    await asyncio.sleep(QUIET_S)
    check(c3.seqs() == [5, 6], "durable queue: rejoining member got %s, expected [5, 6]" % c3.seqs())
    await q3.close()
    await p.close()
    return {"first": first, "resumed": c3.seqs()}


async def durable_phase_a(ch, publisher):
    """c1 subscribes durable "dur" from First with manual acks; msg-1..3; acks 1 and 2, not 3."""
    c1 = await Conn("c1").connect()

    async def on_msg(rec, msg):
        if rec["seq"] != 3:
            await c1.sc.ack(msg)

    _, col = await c1.subscribe(ch, "c1-first", on_msg, durable_name="dur", start_at="first", manual_acks=True)
    await (publisher or c1).publish_all(ch, payloads(1, 3))
    await col.wait_count(3)
    check(col.seqs() == [1, 2, 3], "durable: first session got %s, expected [1, 2, 3]" % col.seqs())
    await c1.nc.flush()
    return c1, col


async def durable_phase_b(ch, after_crash=False):
    # With after_crash, 4 and 5 were published while the crashed session was still
    # registered: they went to its dead inbox and come back as redeliveries (as with
    # the reference server), so only their order is checked.
    """c1 (same client ID) resumes "dur": 3 redelivered first, then 4 and 5; never 1, 2."""
    c1 = await Conn("c1").connect()

    async def on_msg(rec, msg):
        await c1.sc.ack(msg)

    sub, col = await c1.subscribe(ch, "c1-resumed", on_msg, durable_name="dur", start_at="first", manual_acks=True)
    await col.wait_count(3)
    await asyncio.sleep(QUIET_S)
    got = [{"seq": m["seq"], "redelivered": m["redelivered"]} for m in col.msgs]
    check(col.seqs() == [3, 4, 5],
          "durable resume: got seqs %s, expected [3, 4, 5] (unacked 3 first, then the new 4,5; never 1,2)" % col.seqs())
    check(col.msgs[0]["redelivered"], "durable resume: unacked seq 3 is not flagged redelivered")
    if not after_crash:
        check(not col.msgs[1]["redelivered"] and not col.msgs[2]["redelivered"], "durable resume: new seqs 4,5 flagged redelivered")
    check_payloads(col.msgs)
    try:
        await sub.close()  # SubClose: the durable stays
    except Exception as e:
        raise ScenarioError("sub close: %s: %s" % (type(e).__name__, e))
    await c1.close()
    return got


async def durable_reconnect():
    ch = channel_of("durable_reconnect")
    p = await Conn("dpub").connect()
    c1, col = await durable_phase_a(ch, p)
    await c1.close()
    await p.publish_all(ch, payloads(4, 5))
    resumed = await durable_phase_b(ch)
    await p.close()
    return {"first_session": col.seqs(), "resumed": resumed}


async def durable_restart(name, crash):
    """Durable resumed across a stanchion restart, driven by the Rust test (phase 1,
    SIGKILL + restart, phase 2). With `crash`, phase 1 ends without a CloseRequest,
    so phase 2's connect goes through the duplicate-client-ID check."""
    ch = channel_of(name)
    if PHASE == "1":
        c1, col = await durable_phase_a(ch, None)
        await asyncio.sleep(0.3)  # let the acks reach the server and its store
        if crash:
            await c1.drop()
        else:
            await c1.close()
        return {"first_session": col.seqs(), "closed": not crash}
    if PHASE == "2":
        p = await Conn("dpub2").connect()
        guids = await p.publish_all(ch, payloads(4, 5))
        resumed = await durable_phase_b(ch, crash)
        await p.close()
        return {"published_after_restart": len(guids), "resumed": resumed}
    raise ScenarioError("%s needs phase 1 or 2, got %r" % (name, PHASE))


async def manual_ack_redelivery():
    """AckWait 1 s, msg-1..3 from First, 1 and 3 acked, 2 not: seq 2 comes back once,
    flagged redelivered, about 1 s later (the 0.4.0 client does not know redeliveryCount)."""
    ch = channel_of("manual_ack_redelivery")
    c = await Conn("ma").connect()
    await c.publish_all(ch, payloads(1, 3))

    async def on_msg(rec, msg):
        if rec["seq"] != 2 or rec["redelivered"]:
            await c.sc.ack(msg)

    _, col = await c.subscribe(ch, "manual", on_msg, start_at="first", manual_acks=True, ack_wait=1)
    await col.wait_count(4)
    await asyncio.sleep(2.2)  # two more ack waits: nothing else may arrive
    d = col.msgs
    check(col.seqs() == [1, 2, 3, 2], "manual ack: deliveries %s, expected [1, 2, 3, 2] (only seq 2 redelivered, once)" % col.seqs())
    check(not (d[0]["redelivered"] or d[1]["redelivered"] or d[2]["redelivered"]), "manual ack: a first delivery is flagged redelivered")
    check(d[3]["redelivered"], "manual ack: redelivery of seq 2 lacks the redelivered flag")
    delay = d[3]["t_ms"] - d[1]["t_ms"]
    check(700 <= delay <= 3000, "manual ack: seq 2 redelivered %.0f ms after first delivery, expected about 1000 ms" % delay)
    check_payloads(d)
    await c.close()
    return {"deliveries": [{"seq": m["seq"], "redelivered": m["redelivered"]} for m in d],
            "redelivery_delay_ms": round(delay, 1)}


async def publish_error():
    """Publishing to the wildcard channel foo.* → PubAck error "stan: invalid publish request"."""
    c = await Conn("perr").connect()
    before = len(GENERATED)
    try:
        ack = await asyncio.wait_for(c.sc.publish("foo.*", b"bad", ack_wait=WAIT_S), WAIT_S + 1)
    except Exception as e:
        raise ScenarioError("publish to foo.*: %s: %s" % (type(e).__name__, e))
    sent_guid = GENERATED[before] if len(GENERATED) > before else None
    check(ack.error == "stan: invalid publish request",
          "publish to foo.*: PubAck error %r, expected 'stan: invalid publish request'" % ack.error)
    check(ack.guid == sent_guid, "publish to foo.*: PubAck guid %r != %r" % (ack.guid, sent_guid))
    ok = await c.publish_all(channel_of("publish_error"), [b"after-error"])
    await c.close()
    return {"error": ack.error, "guid_echoed": True, "publish_after_error_ok": len(ok) == 1}


async def max_inflight():
    """Flow control: msg-1..5, First, manual ack, MaxInFlight 2, AckWait 30 s: only 1,2
    arrive until 1 is acked, then 3; after acking 2 and 3, 4 and 5."""
    ch = channel_of("max_inflight")
    c = await Conn("mif").connect()
    await c.publish_all(ch, payloads(1, 5))
    msgs = {}

    async def on_msg(rec, msg):
        msgs[rec["seq"]] = msg

    _, col = await c.subscribe(ch, "mif", on_msg, start_at="first", manual_acks=True, max_inflight=2, ack_wait=30)
    steps = []
    await col.wait_count(2)
    await asyncio.sleep(QUIET_S)
    steps.append(col.seqs())
    check(col.seqs() == [1, 2], "max in flight 2: got %s before any ack, expected [1, 2]" % col.seqs())
    await c.sc.ack(msgs[1])
    await col.wait_count(3)
    await asyncio.sleep(QUIET_S)
    steps.append(col.seqs())
    check(col.seqs() == [1, 2, 3], "max in flight 2: got %s after acking 1, expected [1, 2, 3]" % col.seqs())
    await c.sc.ack(msgs[2])
    await c.sc.ack(msgs[3])
    await col.wait_count(5)
    await asyncio.sleep(QUIET_S)
    steps.append(col.seqs())
    check(col.seqs() == [1, 2, 3, 4, 5], "max in flight 2: got %s after acking 2,3, expected 1..5" % col.seqs())
    check(not any(m["redelivered"] for m in col.msgs), "max in flight: a delivery is flagged redelivered")
    await c.close()
    return {"steps": steps}


async def durable_unsubscribe():
    """Unsubscribe removes a durable: "dur" from First gets 1..3, is unsubscribed, 4 is
    published, "dur" from First again is a new durable and gets 1..4."""
    ch = channel_of("durable_unsubscribe")
    c = await Conn("du").connect()
    await c.publish_all(ch, payloads(1, 3))
    sub, first = await c.subscribe(ch, "du-first", durable_name="dur", start_at="first")
    await first.wait_count(3)
    try:
        await sub.unsubscribe()
    except Exception as e:
        raise ScenarioError("unsubscribe: %s: %s" % (type(e).__name__, e))
    await c.publish_all(ch, payloads(4, 4))
    _, again = await c.subscribe(ch, "du-again", durable_name="dur", start_at="first")
    await again.wait_count(4)
    await asyncio.sleep(QUIET_S)
    check(again.seqs() == [1, 2, 3, 4],
          "durable after unsubscribe: got %s, expected a new durable from First: [1, 2, 3, 4]" % again.seqs())
    await c.close()
    return {"first": first.seqs(), "again": again.seqs()}


async def pings():
    """Client PINGs (protocol 1): interval 1 s, max out 3. The server must echo the
    interval and answer every PING; after 3.5 s nothing is outstanding beyond the
    ping in flight and the connection still publishes."""
    c = Conn("ping")
    lost = []

    async def conn_lost(err):
        lost.append(str(err))

    await c.nc.connect(servers=[NATS_URL], name="py-" + c.cid, allow_reconnect=False)
    try:
        await c.sc.connect(CLUSTER_ID, c.cid, nats=c.nc, ping_interval=1, ping_max_out=3, conn_lost_cb=conn_lost)
    except Exception as e:
        await c.nc.close()
        raise ScenarioError("connect %s: %s: %s" % (c.cid, type(e).__name__, e))
    check(c.sc._ping_interval == 1, "server did not echo pingInterval 1 (client uses %r)" % c.sc._ping_interval)
    max_out = 0
    for _ in range(70):
        await asyncio.sleep(0.05)
        max_out = max(max_out, c.sc._ping_out)
    check(not lost, "connection lost: %s" % lost)
    check(max_out <= 1, "PINGs not answered: up to %d outstanding" % max_out)
    await c.publish_all(channel_of("pings"), [b"after-pings"])
    await c.close()
    return {"ping_interval_s": c.sc._ping_interval, "max_outstanding": max_out}


SCENARIOS = {
    "connect_close": connect_close,
    "publish": publish,
    "start_new_only": start_new_only,
    "start_last_received": start_last_received,
    "start_time_delta": start_time_delta,
    "start_sequence": start_sequence,
    "start_first": start_first,
    "queue": queue,
    "durable_reconnect": durable_reconnect,
    "manual_ack_redelivery": manual_ack_redelivery,
    "durable_restart": lambda: durable_restart("durable_restart", False),
    "durable_restart_crash": lambda: durable_restart("durable_restart_crash", True),
    "publish_error": publish_error,
    "max_inflight": max_inflight,
    "durable_unsubscribe": durable_unsubscribe,
    "pings": pings,
    "durable_queue": durable_queue,
}


# ----------------------------------------------------------------------- main

def finish(code, obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main():
    base = {"client": "python", "scenario": SCENARIO, "phase": PHASE or None}
    run = SCENARIOS.get(SCENARIO)
    if run is None:
        sys.stderr.write("usage: python scenario.py <nats_url> <cluster_id> <scenario> [phase]\nscenarios: %s\n"
                         % " ".join(SCENARIOS))
        finish(64, dict(base, ok=False, error="unknown scenario %r" % SCENARIO))

    # Hard backstop in case the event loop itself is stuck.
    def on_alarm(_sig, _frm):
        sys.stderr.write("python interop %s: hard timeout\n" % SCENARIO)
        finish(2, dict(base, ok=False, error="scenario hard timeout after %.0f s" % (TIMEOUT_S + 5)))

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(TIMEOUT_S) + 5)

    loop = asyncio.get_event_loop()
    try:
        result = loop.run_until_complete(asyncio.wait_for(run(), TIMEOUT_S))
    except asyncio.TimeoutError:
        sys.stderr.write("python interop %s: whole-run timeout after %.1f s\n" % (SCENARIO, TIMEOUT_S))
        finish(2, dict(base, ok=False, error="scenario timed out after %.1f s" % TIMEOUT_S))
    except ScenarioError as e:
        sys.stderr.write("python interop %s FAILED: %s\n" % (SCENARIO, e))
        finish(1, dict(base, ok=False, error=str(e)))
    except Exception as e:  # a client-library error we did not map
        import traceback
        traceback.print_exc()
        finish(1, dict(base, ok=False, error="%s: %s" % (type(e).__name__, e)))
    finish(0, dict(base, ok=True, **result))


if __name__ == "__main__":
    main()
