#!/usr/bin/env node
// Interop scenarios run with the real node-nats-streaming 0.3.2 client against
// a STAN server (stanchion, or the reference nats-streaming-server).
//
// Usage: node scenario.js <nats_url> <cluster_id> <scenario> [phase]
//   (or env NATS_URL, STAN_CLUSTER_ID, SCENARIO, PHASE; argv wins)
// Optional env: INTEROP_TIMEOUT_MS (whole-run bound, default 20000),
//               INTEROP_RUN_ID (suffix for channel names and client IDs, so
//               the scenarios can be re-run against a server that has state).
//
// Prints exactly one JSON line on stdout: {"client":"node","scenario":...,"ok":true,...}
// and exits 0; on failure prints {"ok":false,"error":...} and exits 1 (2 on
// the whole-run timeout, 64 on bad usage).
'use strict'

const L = require('./lib')
const { check, sleep } = L

const argv = process.argv.slice(2)
const NATS_URL = argv[0] || process.env.NATS_URL || 'nats://127.0.0.1:4222'
const CLUSTER_ID = argv[1] || process.env.STAN_CLUSTER_ID || 'test-cluster'
const SCENARIO = argv[2] || process.env.SCENARIO || ''
const PHASE = argv[3] || process.env.PHASE || ''
const TIMEOUT_MS = parseInt(process.env.INTEROP_TIMEOUT_MS || '20000', 10)
const RUN_ID = process.env.INTEROP_RUN_ID || ''

/** Quiet period after the expected messages, to catch extra deliveries. */
const QUIET_MS = 500
/** Bound for one wait on deliveries. */
const WAIT_MS = 5000

const clientId = (role) => `node-${role}${RUN_ID ? '-' + RUN_ID : ''}`
const channelOf = (scenario) => `interop.node.${scenario}${RUN_ID ? '.' + RUN_ID : ''}`
const payloads = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => `msg-${from + i}`)
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b)

/** Checks that each delivery carries the payload published for its sequence. */
function checkPayloads (msgs) {
  for (const m of msgs) check(m.data === `msg-${m.seq}`, `seq ${m.seq} carries "${m.data}", expected "msg-${m.seq}"`)
}

function connect (role) {
  return L.connect(NATS_URL, CLUSTER_ID, clientId(role))
}

function opts (sc) {
  return sc.subscriptionOptions()
}

// ---------------------------------------------------------------- scenarios

/** Sync-acked publishes, then pipelined ones; every PubAck echoes its guid, no error; stored in order. */
async function publish () {
  const ch = channelOf('publish')
  const sc = await connect('pub')
  const sync = await L.publishAll(sc, ch, payloads(1, 5))
  // Pipelined: all five PubMsgs go out before any PubAck (as in capture 03).
  const piped = await L.withTimeout(Promise.all(payloads(6, 10).map((d) => L.publish(sc, ch, d))), WAIT_MS, 'pipelined publishes')
  for (const a of piped) {
    check(a.error === '', `pipelined publish: PubAck error "${a.error}"`)
    check(a.ackGuid === a.guid, `pipelined publish: PubAck guid "${a.ackGuid}" != "${a.guid}"`)
  }
  const guids = sync.concat(piped).map((a) => a.guid)
  check(new Set(guids).size === guids.length, `guids are not unique: ${guids}`)
  const { col } = await L.subscribe(sc, ch, null, opts(sc).setDeliverAllAvailable(), 'verify')
  await col.waitCount(10, WAIT_MS)
  await sleep(QUIET_MS)
  check(eq(col.seqs(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), `stored sequences [${col.seqs()}], expected 1..10`)
  checkPayloads(col.msgs)
  await L.close(sc)
  return { published: guids.length, guids, seqs: col.seqs() }
}

/**
 * Publishes msg-1..msg-5 to the scenario's channel, then subscribes with
 * `setOpts` and checks exactly which sequences arrive (`after` may publish more).
 */
async function startPosition (name, setOpts, expected, after) {
  const ch = channelOf(name)
  const sc = await connect('sub')
  await L.publishAll(sc, ch, payloads(1, 5))
  const { col } = await L.subscribe(sc, ch, null, setOpts(opts(sc), sc), name)
  if (after) await after(sc, ch)
  await col.waitCount(expected.length, WAIT_MS)
  await sleep(QUIET_MS)
  check(eq(col.seqs(), expected), `${name}: received seqs [${col.seqs()}], expected [${expected}]`)
  checkPayloads(col.msgs)
  check(col.msgs.every((m) => !m.redelivered), `${name}: a first delivery is flagged redelivered`)
  await L.close(sc)
  return { seqs: col.seqs(), expected }
}

const startNewOnly = () => startPosition('start_new_only', (o) => o.setStartAt(L.stan.StartPosition.NEW_ONLY), [6, 7],
  (sc, ch) => L.publishAll(sc, ch, payloads(6, 7)))

const startLastReceived = () => startPosition('start_last_received', (o) => o.setStartWithLastReceived(), [5, 6],
  (sc, ch) => L.publishAll(sc, ch, payloads(6, 6)))

const startSequence = () => startPosition('start_sequence', (o) => o.setStartAtSequence(3), [3, 4, 5])

const startFirst = () => startPosition('start_first', (o) => o.setDeliverAllAvailable(), [1, 2, 3, 4, 5])

/** msg-1, msg-2; 1.5 s later mark; msg-3..5; subscribe with delta = now - (mark - 500 ms) → [3,4,5]. */
async function startTimeDelta () {
  const name = 'start_time_delta'
  const ch = channelOf(name)
  const sc = await connect('sub')
  await L.publishAll(sc, ch, payloads(1, 2))
  await sleep(1500)
  const mark = Date.now()
  await L.publishAll(sc, ch, payloads(3, 5))
  const deltaMs = Date.now() - mark + 500
  const { col } = await L.subscribe(sc, ch, null, opts(sc).setStartAtTimeDelta(deltaMs), name)
  await col.waitCount(3, WAIT_MS)
  await sleep(QUIET_MS)
  check(eq(col.seqs(), [3, 4, 5]), `${name}: received seqs [${col.seqs()}], expected [3,4,5] (delta ${deltaMs} ms)`)
  checkPayloads(col.msgs)
  await L.close(sc)
  return { seqs: col.seqs(), expected: [3, 4, 5], delta_ms: deltaMs }
}

/** Two members of one queue group on separate connections share 10 messages, each exactly once. */
async function queue () {
  const ch = channelOf('queue')
  const q1 = await connect('q1')
  const q2 = await connect('q2')
  const p = await connect('qpub')
  const m1 = await L.subscribe(q1, ch, 'grp', opts(q1), 'q1')
  const m2 = await L.subscribe(q2, ch, 'grp', opts(q2), 'q2')
  await L.publishAll(p, ch, payloads(1, 10))
  const total = () => m1.col.msgs.length + m2.col.msgs.length
  await L.withTimeout((async () => { while (total() < 10) await sleep(20) })(), WAIT_MS,
    `queue: waiting for 10 deliveries (q1 [${m1.col.seqs()}], q2 [${m2.col.seqs()}])`)
  await sleep(QUIET_MS)
  const s1 = m1.col.seqs()
  const s2 = m2.col.seqs()
  const all = s1.concat(s2).sort((a, b) => a - b)
  check(eq(all, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), `queue: q1 [${s1}] + q2 [${s2}] is not exactly 1..10 once each`)
  check(s1.length > 0 && s2.length > 0, `queue: one member got nothing (q1 [${s1}], q2 [${s2}])`)
  checkPayloads(m1.col.msgs.concat(m2.col.msgs))
  check(m1.col.msgs.concat(m2.col.msgs).every((m) => !m.redelivered), 'queue: a delivery is flagged redelivered')
  await L.close(q1)
  await L.close(q2)
  await L.close(p)
  return { q1: s1, q2: s2 }
}

/**
 * Durable queue group: q1 and q2 (durable "dur", group "grp", First) share
 * msg-1..4 and ack them; both connections close (the group's state stays);
 * msg-5 and msg-6 are published; q3 joins the same durable group and gets
 * exactly 5 and 6.
 */
async function durableQueue () {
  const ch = channelOf('durable_queue')
  const p = await connect('dqpub')
  const dq = (sc) => opts(sc).setDurableName('dur').setDeliverAllAvailable()
  const q1 = await connect('dq1')
  const q2 = await connect('dq2')
  const m1 = await L.subscribe(q1, ch, 'grp', dq(q1), 'dq1')
  const m2 = await L.subscribe(q2, ch, 'grp', dq(q2), 'dq2')
  await L.publishAll(p, ch, payloads(1, 4))
  const total = () => m1.col.msgs.length + m2.col.msgs.length
  await L.withTimeout((async () => { while (total() < 4) await sleep(20) })(), WAIT_MS, 'durable queue: 4 deliveries')
  await sleep(QUIET_MS)
  const first = m1.col.seqs().concat(m2.col.seqs()).sort((a, b) => a - b)
  check(eq(first, [1, 2, 3, 4]), `durable queue: members got [${first}], expected 1..4 once each`)
  await L.close(q1)
  await L.close(q2)
  await L.publishAll(p, ch, payloads(5, 6))
  const q3 = await connect('dq3')
  const m3 = await L.subscribe(q3, ch, 'grp', dq(q3), 'dq3')
  await m3.col.waitCount(2, WAIT_MS)
  await sleep(QUIET_MS)
  check(eq(m3.col.seqs(), [5, 6]), `durable queue: rejoining member got [${m3.col.seqs()}], expected [5,6]`)
  await L.close(q3)
  await L.close(p)
  return { first, resumed: m3.col.seqs() }
}

/**
 * Phase A of a durable test: c1 subscribes durable "dur" from First with
 * manual acks, msg-1..3 are published, c1 acks 1 and 2 but not 3.
 */
async function durablePhaseA (ch, publisher) {
  const c1 = await connect('c1')
  const o = opts(c1).setDurableName('dur').setDeliverAllAvailable().setManualAckMode(true)
  const { col } = await L.subscribe(c1, ch, null, o, 'c1-first', (rec, msg) => {
    if (rec.seq !== 3) msg.ack()
  })
  await L.publishAll(publisher || c1, ch, payloads(1, 3))
  await col.waitCount(3, WAIT_MS)
  check(eq(col.seqs(), [1, 2, 3]), `durable: first session got [${col.seqs()}], expected [1,2,3]`)
  await L.flush(c1)
  return { c1, col }
}

/**
 * Phase B: c1 (same client ID) resumes "dur"; expects 3 redelivered first, then 4 and 5.
 * With `afterCrash`, 4 and 5 were published while the crashed session was still
 * registered, so they went to its dead inbox and come back as redeliveries (as
 * with the reference server); only their order is checked then.
 */
async function durablePhaseB (ch, afterCrash) {
  const c1 = await connect('c1')
  const o = opts(c1).setDurableName('dur').setDeliverAllAvailable().setManualAckMode(true)
  const { sub, col } = await L.subscribe(c1, ch, null, o, 'c1-resumed', (rec, msg) => msg.ack())
  await col.waitCount(3, WAIT_MS)
  await sleep(QUIET_MS)
  const got = col.msgs.map((m) => ({ seq: m.seq, redelivered: m.redelivered }))
  check(eq(col.seqs(), [3, 4, 5]), `durable resume: got seqs [${col.seqs()}], expected [3,4,5] (unacked 3 first, then the new 4,5; never 1,2)`)
  check(col.msgs[0].redelivered === true, 'durable resume: unacked seq 3 is not flagged redelivered')
  if (!afterCrash) check(!col.msgs[1].redelivered && !col.msgs[2].redelivered, 'durable resume: new seqs 4,5 flagged redelivered')
  checkPayloads(col.msgs)
  await L.closeSub(sub)
  await L.close(c1)
  return got
}

/** Durable resumed across a clean client close + reconnect with the same client ID. */
async function durableReconnect () {
  const ch = channelOf('durable_reconnect')
  const p = await connect('dpub')
  const a = await durablePhaseA(ch, p)
  await L.close(a.c1)
  await L.publishAll(p, ch, payloads(4, 5))
  const resumed = await durablePhaseB(ch)
  await L.close(p)
  return { first_session: a.col.seqs(), resumed }
}

/**
 * Durable resumed across a stanchion restart (driven by the Rust test:
 * phase 1, SIGKILL + restart of the server, phase 2). With `crash`, phase 1
 * exits without a CloseRequest, so after the restart the client ID is still
 * registered and phase 2's connect goes through the duplicate-client-ID check
 * (old heartbeat inbox has no responder → the old client is replaced).
 */
async function durableRestart (name, crash) {
  const ch = channelOf(name)
  if (PHASE === '1') {
    const a = await durablePhaseA(ch, null)
    // Let the acks reach the server and its store before the process ends.
    await sleep(300)
    if (!crash) await L.close(a.c1)
    return { first_session: a.col.seqs(), closed: !crash, exit_now: crash }
  }
  if (PHASE === '2') {
    const p = await connect('dpub2')
    const acks = await L.publishAll(p, ch, payloads(4, 5))
    const resumed = await durablePhaseB(ch, crash)
    await L.close(p)
    return { published_after_restart: acks.length, resumed }
  }
  throw new L.ScenarioError(`${name} needs phase 1 or 2, got "${PHASE}"`)
}

/** Publishing to the wildcard channel foo.* → PubAck error "stan: invalid publish request". */
async function publishError () {
  const sc = await connect('perr')
  const a = await L.withTimeout(L.publish(sc, 'foo.*', 'bad'), WAIT_MS, 'publish to foo.*')
  check(a.error === 'stan: invalid publish request', `publish to foo.*: PubAck error "${a.error}", expected "stan: invalid publish request"`)
  check(a.ackGuid === a.guid, `publish to foo.*: PubAck guid "${a.ackGuid}" != "${a.guid}"`)
  // The connection is still usable afterwards.
  const ok = await L.publishAll(sc, channelOf('publish_error'), ['after-error'])
  await L.close(sc)
  return { error: a.error, guid_echoed: a.ackGuid === a.guid, publish_after_error_ok: ok.length === 1 }
}

/**
 * Flow control: msg-1..5, First, manual ack, MaxInFlight 2, AckWait 30 s:
 * only 1,2 arrive until 1 is acked, then 3; after acking 2 and 3, 4 and 5.
 */
async function maxInflight () {
  const ch = channelOf('max_inflight')
  const sc = await connect('mif')
  await L.publishAll(sc, ch, payloads(1, 5))
  const msgs = {}
  const o = opts(sc).setDeliverAllAvailable().setManualAckMode(true).setMaxInFlight(2).setAckWait(30000)
  const { col } = await L.subscribe(sc, ch, null, o, 'mif', (rec, msg) => { msgs[rec.seq] = msg })
  const steps = []
  await col.waitCount(2, WAIT_MS)
  await sleep(QUIET_MS)
  steps.push(col.seqs())
  check(eq(col.seqs(), [1, 2]), `max in flight 2: got [${col.seqs()}] before any ack, expected [1,2]`)
  msgs[1].ack()
  await col.waitCount(3, WAIT_MS)
  await sleep(QUIET_MS)
  steps.push(col.seqs())
  check(eq(col.seqs(), [1, 2, 3]), `max in flight 2: got [${col.seqs()}] after acking 1, expected [1,2,3]`)
  msgs[2].ack()
  msgs[3].ack()
  await col.waitCount(5, WAIT_MS)
  await sleep(QUIET_MS)
  steps.push(col.seqs())
  check(eq(col.seqs(), [1, 2, 3, 4, 5]), `max in flight 2: got [${col.seqs()}] after acking 2,3, expected [1..5]`)
  check(col.msgs.every((m) => !m.redelivered), 'max in flight: a delivery is flagged redelivered')
  await L.close(sc)
  return { steps }
}

/**
 * Unsubscribe removes a durable: "dur" from First gets 1..3 (auto ack), is
 * unsubscribed, 4 is published, "dur" from First again is a new durable and
 * gets 1..4 (a resumed one would get only 4).
 */
async function durableUnsubscribe () {
  const ch = channelOf('durable_unsubscribe')
  const sc = await connect('du')
  await L.publishAll(sc, ch, payloads(1, 3))
  const first = await L.subscribe(sc, ch, null, opts(sc).setDurableName('dur').setDeliverAllAvailable(), 'du-first')
  await first.col.waitCount(3, WAIT_MS)
  await L.withTimeout(new Promise((resolve, reject) => {
    first.sub.once('unsubscribed', resolve)
    first.sub.once('error', (e) => reject(new L.ScenarioError(`unsubscribe: ${L.errText(e)}`)))
    first.sub.once('timeout', (e) => reject(new L.ScenarioError(`unsubscribe: ${L.errText(e)}`)))
    first.sub.unsubscribe()
  }), WAIT_MS, 'unsubscribe')
  await L.publishAll(sc, ch, payloads(4, 4))
  const again = await L.subscribe(sc, ch, null, opts(sc).setDurableName('dur').setDeliverAllAvailable(), 'du-again')
  await again.col.waitCount(4, WAIT_MS)
  await sleep(QUIET_MS)
  check(eq(again.col.seqs(), [1, 2, 3, 4]), `durable after unsubscribe: got [${again.col.seqs()}], expected a new durable from First: [1,2,3,4]`)
  await L.close(sc)
  return { first: first.col.seqs(), again: again.col.seqs() }
}

/**
 * Client PINGs (protocol 1): ping interval 1 s, max out 3. The server must
 * echo the interval and answer every PING: after 3.5 s no ping is
 * outstanding beyond the one in flight and the connection still publishes.
 */
async function pings () {
  const sc = await L.connect(NATS_URL, CLUSTER_ID, clientId('ping'), { stanPingInterval: 1000, stanMaxPingOut: 3 })
  check(sc.stanPingInterval === 1000, `server did not echo pingInterval 1 s (client uses ${sc.stanPingInterval} ms)`)
  check(sc.pingTimer !== undefined, 'client ping timer not running (ConnectResponse without ping fields?)')
  let maxOut = 0
  const t = setInterval(() => { maxOut = Math.max(maxOut, sc.pingOut) }, 50)
  await sleep(3500)
  clearInterval(t)
  check(sc.asyncErrors.length === 0, `connection errors: ${sc.asyncErrors}`)
  check(maxOut <= 1, `PINGs not answered: up to ${maxOut} outstanding`)
  await L.publishAll(sc, channelOf('pings'), ['after-pings'])
  await L.close(sc)
  return { ping_interval_ms: sc.stanPingInterval, max_outstanding: maxOut }
}

/**
 * Client pings every 1 s; the Rust test then makes the server forget this
 * client (a CloseRequest for its ID sent by someone else). The next PING is
 * answered "client has been replaced or is no longer registered" and the
 * client reports connection_lost with that text.
 */
async function pingLost () {
  const sc = await L.connect(NATS_URL, CLUSTER_ID, clientId('pinglost'), { stanPingInterval: 1000, stanMaxPingOut: 3 })
  const lost = new Promise((resolve) => sc.on('connection_lost', (err) => resolve(L.errText(err))))
  const text = await L.withTimeout(lost, 4 * WAIT_MS, 'ping_lost: waiting for connection_lost')
  return { connection_lost: text }
}

/** Connect then close (smoke test; also what a bare nats-server rejects with a connect timeout). */
async function connectClose () {
  const sc = await connect('cc')
  await L.close(sc)
  return {}
}

const SCENARIOS = {
  connect_close: connectClose,
  publish,
  start_new_only: startNewOnly,
  start_last_received: startLastReceived,
  start_time_delta: startTimeDelta,
  start_sequence: startSequence,
  start_first: startFirst,
  queue,
  durable_reconnect: durableReconnect,
  manual_ack_redelivery: manualAckRedelivery,
  durable_restart: () => durableRestart('durable_restart', false),
  durable_restart_crash: () => durableRestart('durable_restart_crash', true),
  publish_error: publishError,
  max_inflight: maxInflight,
  durable_unsubscribe: durableUnsubscribe,
  pings,
  ping_lost: pingLost,
  durable_queue: durableQueue
}

/**
 * Manual ack with AckWait 1 s: msg-1..3 from First, 1 and 3 acked, 2 not;
 * seq 2 must come back once with redelivered=true (and redeliveryCount 1),
 * about 1 s later, and nothing after it is acked.
 */
async function manualAckRedelivery () {
  const ch = channelOf('manual_ack_redelivery')
  const sc = await connect('ma')
  await L.publishAll(sc, ch, payloads(1, 3))
  const o = opts(sc).setDeliverAllAvailable().setManualAckMode(true).setAckWait(1000)
  const { col } = await L.subscribe(sc, ch, null, o, 'manual', (rec, msg) => {
    if (rec.seq !== 2 || rec.redelivered) msg.ack()
  })
  await col.waitCount(4, WAIT_MS)
  // Two more ack waits: nothing else may arrive (acked messages stay acked).
  await sleep(2200)
  const d = col.msgs
  check(eq(col.seqs(), [1, 2, 3, 2]), `manual ack: deliveries [${col.seqs()}], expected [1,2,3,2] (only seq 2 redelivered, once)`)
  check(!d[0].redelivered && !d[1].redelivered && !d[2].redelivered, 'manual ack: a first delivery is flagged redelivered')
  check(d[3].redelivered === true, 'manual ack: redelivery of seq 2 lacks the redelivered flag')
  check(d[3].redeliveryCount === 1, `manual ack: redeliveryCount is ${d[3].redeliveryCount}, expected 1`)
  const delay = d[3].t_ms - d[1].t_ms
  check(delay >= 700 && delay <= 3000, `manual ack: seq 2 redelivered ${delay} ms after first delivery, expected about 1000 ms`)
  checkPayloads(d)
  await L.close(sc)
  return { deliveries: d.map((m) => ({ seq: m.seq, redelivered: m.redelivered, redeliveryCount: m.redeliveryCount })), redelivery_delay_ms: delay }
}

// --------------------------------------------------------------------- main

function finish (code, obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
  process.exit(code)
}

async function main () {
  const base = { client: 'node', scenario: SCENARIO, phase: PHASE || undefined }
  const run = SCENARIOS[SCENARIO]
  if (!run) {
    process.stderr.write(`usage: node scenario.js <nats_url> <cluster_id> <scenario> [phase]\nscenarios: ${Object.keys(SCENARIOS).join(' ')}\n`)
    finish(64, Object.assign(base, { ok: false, error: `unknown scenario "${SCENARIO}"` }))
  }
  const timer = setTimeout(() => {
    process.stderr.write(`node interop ${SCENARIO}: whole-run timeout after ${TIMEOUT_MS} ms\n`)
    finish(2, Object.assign(base, { ok: false, error: `scenario timed out after ${TIMEOUT_MS} ms` }))
  }, TIMEOUT_MS)
  try {
    const result = await run()
    clearTimeout(timer)
    finish(0, Object.assign(base, { ok: true }, result))
  } catch (err) {
    clearTimeout(timer)
    const msg = L.errText(err)
    process.stderr.write(`node interop ${SCENARIO} FAILED: ${msg}\n${err && err.stack && !(err instanceof L.ScenarioError) ? err.stack + '\n' : ''}`)
    finish(1, Object.assign(base, { ok: false, error: msg }))
  }
}

main()
