// Edit-to-arrival latency between two real Yjs clients (npm `yjs` + `y-websocket`), one on
// each of two y-websocket endpoints (the same endpoint twice is fine).
//
// Usage: node bench-latency.mjs <urlA> <urlB> [--edits N] [--warmup W] [--kind text|map]
//   url: ws://HOST:PORT/PREFIX/ROOM[?token=T]  (the last path segment is the room, the query
//        parameters go to the provider's `params`)
// Client A creates one object (the echo object model: `@type`, `@deleted`, `@meta`, a Y.Text
// `title`, a number `n`), waits until B has it, then makes W + N single edits, one at a time:
// a one-character Y.Text append (`text`) or `n = i` (`map`). Each edit's latency is the time
// from just before A's local edit (which the provider sends synchronously) to B's observe
// callback for it; the next edit starts after that. Both clients run in this process, so one
// clock measures both ends. Prints one JSON line: the N latencies' summary in milliseconds.
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const args = process.argv.slice(2)
const flag = (name, fallback) => {
  const i = args.indexOf(name)
  if (i < 0) return fallback
  const value = args[i + 1]
  args.splice(i, 2)
  return value
}
const edits = Number(flag('--edits', '200'))
const warmup = Number(flag('--warmup', '10'))
const kind = flag('--kind', 'text')
const [urlA, urlB] = args
if (!urlA || !urlB || !(edits > 0) || !(warmup >= 0) || !['text', 'map'].includes(kind)) {
  console.error('usage: node bench-latency.mjs <urlA> <urlB> [--edits N] [--warmup W] [--kind text|map]')
  process.exit(2)
}
const TIMEOUT_MS = 20000

const connect = (url) => {
  const u = new URL(url)
  const parts = u.pathname.split('/')
  const room = decodeURIComponent(parts.pop())
  const server = `${u.protocol}//${u.host}${parts.join('/')}`
  const params = Object.fromEntries(u.searchParams)
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server, room, doc, { params, WebSocketPolyfill: WebSocket })
  provider.on('connection-close', (event) => {
    if (event && event.code !== 1000) console.error(`${url.split('?')[0]} closed: ${event.code} ${event.reason}`)
  })
  return { doc, provider, objects: doc.getMap('objects') }
}

const until = (pred, what) => new Promise((resolve, reject) => {
  const started = Date.now()
  const tick = () => {
    if (pred()) return resolve()
    if (Date.now() - started > TIMEOUT_MS) return reject(new Error(`timeout: ${what}`))
    setTimeout(tick, 2)
  }
  tick()
})

// A fresh object id: a ULID (48-bit milliseconds, 80 random bits, Crockford base32).
const ulid = () => {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
  let time = Date.now()
  let out = ''
  for (let i = 0; i < 10; i++) {
    out = alphabet[time % 32] + out
    time = Math.floor(time / 32)
  }
  for (let i = 0; i < 16; i++) out += alphabet[Math.floor(Math.random() * 32)]
  return out
}

const a = connect(urlA)
const b = connect(urlB)
await until(() => a.provider.synced && b.provider.synced, 'both clients synced')

const id = ulid()
a.doc.transact(() => {
  const object = new Y.Map()
  object.set('@type', 'Bench')
  object.set('@deleted', false)
  object.set('@meta', new Y.Map())
  object.set('title', new Y.Text(''))
  object.set('n', -1)
  a.objects.set(id, object)
})
await until(() => b.objects.get(id) instanceof Y.Map && b.objects.get(id).get('title') instanceof Y.Text,
  'B to receive the object')
const objectA = a.objects.get(id)
const objectB = b.objects.get(id)
const textA = objectA.get('title')
const textB = objectB.get('title')

// The pending edit: what B must see, its start time, and how to finish it.
let pending = null
const arrived = (seen) => {
  if (pending && seen(pending.expect)) {
    const done = pending
    pending = null
    done.resolve(performance.now() - done.started)
  }
}
textB.observe(() => arrived((expect) => kind === 'text' && textB.length === expect))
objectB.observe(() => arrived((expect) => kind === 'map' && objectB.get('n') === expect))

const edit = (i) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`timeout: edit ${i} did not arrive`)), TIMEOUT_MS)
  const expect = kind === 'text' ? textA.length + 1 : i
  pending = {
    expect,
    started: performance.now(),
    resolve: (ms) => { clearTimeout(timer); resolve(ms) }
  }
  if (kind === 'text') textA.insert(textA.length, 'x')
  else objectA.set('n', i)
})

const latencies = []
try {
  for (let i = 0; i < warmup + edits; i++) {
    const ms = await edit(i)
    if (i >= warmup) latencies.push(ms)
    await new Promise((resolve) => setImmediate(resolve)) // let both sockets settle
  }
} catch (e) {
  console.error(String(e))
  process.exit(1)
}

const sorted = [...latencies].sort((x, y) => x - y)
const rank = (p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
const round = (ms) => Math.round(ms * 1000) / 1000
const summary = {
  kind,
  edits,
  min_ms: round(sorted[0]),
  median_ms: round(rank(50)),
  p90_ms: round(rank(90)),
  p99_ms: round(rank(99)),
  max_ms: round(sorted[sorted.length - 1]),
  mean_ms: round(latencies.reduce((s, x) => s + x, 0) / latencies.length)
}
process.stdout.write(JSON.stringify(summary) + '\n', () => {
  a.provider.destroy()
  b.provider.destroy()
  process.exit(0)
})
