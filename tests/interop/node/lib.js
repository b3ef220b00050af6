// Promise helpers around the real node-nats-streaming 0.3.2 client (callback
// and event based), so that scenarios read top to bottom. Nothing here talks
// the wire protocol itself: every byte goes through the third-party client.
'use strict'

const stan = require('node-nats-streaming')

/** Error raised when a scenario's expectation does not hold. */
class ScenarioError extends Error {}

/** Throws a ScenarioError with `msg` unless `cond` holds. */
function check (cond, msg) {
  if (!cond) throw new ScenarioError(msg)
}

/** Resolves after `ms` milliseconds. */
function sleep (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Rejects with `what` timed out if `promise` does not settle within `ms`. */
function withTimeout (promise, ms, what) {
  let timer
  const t = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new ScenarioError(`${what}: timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, t]).finally(() => clearTimeout(timer))
}

/**
 * Connects a STAN client and resolves once the server answered the
 * ConnectRequest. Errors after that are recorded in `sc.asyncErrors` (an
 * EventEmitter with no 'error' listener would crash the process).
 */
function connect (url, clusterID, clientID, extra) {
  return new Promise((resolve, reject) => {
    const opts = Object.assign({ url, name: `node-${clientID}`, maxReconnectAttempts: 0 }, extra || {})
    const sc = stan.connect(clusterID, clientID, opts)
    sc.asyncErrors = []
    let connected = false
    sc.on('connect', () => {
      connected = true
      resolve(sc)
    })
    sc.on('error', (err) => {
      if (!connected) {
        reject(new ScenarioError(`connect ${clientID}: ${errText(err)}`))
      } else {
        sc.asyncErrors.push(errText(err))
      }
    })
    sc.on('connection_lost', (err) => sc.asyncErrors.push(`connection lost: ${errText(err)}`))
  })
}

/** The text of an error the client reported (it passes strings or Errors). */
function errText (err) {
  if (err === undefined || err === null) return ''
  if (typeof err === 'string') return err
  return err.message || String(err)
}

/**
 * Publishes one message and resolves with { guid, ackGuid, error } once the
 * PubAck arrived: `guid` is what publish() returned, `ackGuid` what the ack
 * handler got, `error` the PubAck's error text ('' on success).
 */
function publish (sc, channel, data) {
  return new Promise((resolve) => {
    let guid = null
    let early = null
    const handler = (err, ackGuid) => {
      const r = { ackGuid, error: errText(err) }
      if (guid === null) early = r
      else resolve(Object.assign({ guid }, r))
    }
    guid = sc.publish(channel, data, handler)
    if (early) resolve(Object.assign({ guid }, early))
  })
}

/** Publishes `datas` one after the other (each waits for its PubAck); throws on any error. */
async function publishAll (sc, channel, datas, timeoutMs) {
  const acks = []
  for (const d of datas) {
    const a = await withTimeout(publish(sc, channel, d), timeoutMs || 5000, `publish ${d} to ${channel}`)
    check(a.error === '', `publish ${d} to ${channel}: PubAck error "${a.error}"`)
    check(typeof a.guid === 'string' && a.guid.length > 0, `publish ${d}: no guid returned`)
    check(a.ackGuid === a.guid, `publish ${d}: PubAck guid "${a.ackGuid}" != published guid "${a.guid}"`)
    acks.push(a)
  }
  return acks
}

/**
 * A subscription plus everything it received, in order. `onMessage(rec, msg)`
 * runs for every delivery (manual-ack scenarios ack from there).
 */
class Collector {
  constructor (name) {
    this.name = name
    this.t0 = Date.now()
    this.msgs = []
    this.waiters = []
    this.errors = []
  }

  push (msg) {
    const rec = {
      seq: msg.getSequence(),
      data: msg.getData(),
      redelivered: msg.isRedelivered(),
      redeliveryCount: msg.getRedeliveryCount(),
      t_ms: Date.now() - this.t0
    }
    this.msgs.push(rec)
    this.waiters = this.waiters.filter((w) => !w())
    return rec
  }

  seqs () {
    return this.msgs.map((m) => m.seq)
  }

  /** Waits until `pred(msgs)` holds, or fails after `ms` naming `what`. */
  waitFor (pred, ms, what) {
    return withTimeout(new Promise((resolve) => {
      const w = () => {
        if (pred(this.msgs)) {
          resolve(this.msgs)
          return true
        }
        return false
      }
      if (!w()) this.waiters.push(w)
    }), ms, `${this.name}: waiting for ${what} (got seqs [${this.seqs()}])`)
  }

  /** Waits for `n` messages in total. */
  waitCount (n, ms) {
    return this.waitFor((m) => m.length >= n, ms, `${n} messages`)
  }
}

/**
 * Subscribes and resolves with { sub, col } once the server answered the
 * SubscriptionRequest. `opts` is a node-nats-streaming SubscriptionOptions.
 */
function subscribe (sc, channel, qGroup, opts, name, onMessage) {
  return new Promise((resolve, reject) => {
    const col = new Collector(name || channel)
    const sub = qGroup ? sc.subscribe(channel, qGroup, opts) : sc.subscribe(channel, opts)
    let ready = false
    sub.on('message', (msg) => {
      const rec = col.push(msg)
      if (onMessage) onMessage(rec, msg)
    })
    sub.on('ready', () => {
      ready = true
      resolve({ sub, col })
    })
    sub.on('error', (err) => {
      if (!ready) reject(new ScenarioError(`subscribe ${channel}: ${errText(err)}`))
      else col.errors.push(errText(err))
    })
    sub.on('timeout', (err) => {
      if (!ready) reject(new ScenarioError(`subscribe ${channel}: ${errText(err)}`))
      else col.errors.push(errText(err))
    })
  })
}

/**
 * Closes the STAN connection (CloseRequest) and resolves when the server
 * answered; rejects with the CloseResponse error if there is one.
 */
function close (sc) {
  return new Promise((resolve, reject) => {
    sc.once('close', (err) => {
      if (err) reject(new ScenarioError(`close: ${errText(err)}`))
      else resolve()
    })
    sc.close()
  })
}

/** Closes a subscription with SubClose (durables keep their state). */
function closeSub (sub) {
  return new Promise((resolve, reject) => {
    sub.once('closed', resolve)
    sub.once('error', (err) => reject(new ScenarioError(`sub close: ${errText(err)}`)))
    sub.once('timeout', (err) => reject(new ScenarioError(`sub close: ${errText(err)}`)))
    sub.close()
  })
}

/** Flushes the underlying NATS connection (everything published reached nats-server). */
function flush (sc) {
  return new Promise((resolve) => sc.nc.flush(resolve))
}

module.exports = {
  stan,
  ScenarioError,
  check,
  sleep,
  withTimeout,
  connect,
  errText,
  publish,
  publishAll,
  Collector,
  subscribe,
  close,
  closeSub,
  flush
}
