// A real Yjs client (npm `yjs` + `y-websocket`, unmodified) driven by tests/tests/yjs.rs.
//
// Usage: node client.mjs <serverUrl> <room> [token]
// Reads one JSON command per line on stdin and answers one JSON line on stdout:
//   {"cmd":"synced"}                                 wait until the provider has synced
//   {"cmd":"add","id":ID,"object":{...}}             new object (maps -> Y.Map, arrays ->
//                                                    Y.Array, {"@text": s} -> Y.Text)
//   {"cmd":"set","id":ID,"field":F,"value":V}        objects[ID][F] = V (plain value)
//   {"cmd":"insert","id":ID,"field":F,"index":I,"text":S}   Y.Text insert
//   {"cmd":"remove_entry","id":ID}                   objects.delete(ID) (a hard delete)
//   {"cmd":"wait","id":ID,"field":F,"equals":V}      until objects[ID][F] (as JSON) equals V
//   {"cmd":"get"}                                    objects as JSON
//   {"cmd":"wait_close"}                             next close event: {code, reason}
//   {"cmd":"presence","state":{...}}                 set the local awareness state
//   {"cmd":"wait_peers","count":N}                   until N other awareness states are known
//   {"cmd":"token","token":T}                        use T from the next reconnect on
//   {"cmd":"quit"}
import readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [serverUrl, room, token] = process.argv.slice(2)
const doc = new Y.Doc()
const objects = doc.getMap('objects')
const params = token ? { token } : {}
const provider = new WebsocketProvider(serverUrl, room, doc, { params, WebSocketPolyfill: WebSocket })
const closes = []
provider.on('connection-close', (event) => {
  if (event) closes.push({ code: event.code, reason: event.reason })
})

const toY = (value) => {
  if (Array.isArray(value)) {
    const array = new Y.Array()
    array.push(value.map(toY))
    return array
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value)
    if (keys.length === 1 && keys[0] === '@text') return new Y.Text(value['@text'])
    if (keys.length === 1 && keys[0] === '@ref') return value
    const map = new Y.Map()
    for (const k of keys) map.set(k, toY(value[k]))
    return map
  }
  return value
}

const fieldJson = (id, field) => {
  const object = objects.get(id)
  if (!(object instanceof Y.Map)) return undefined
  const value = object.get(field)
  return value instanceof Y.AbstractType ? value.toJSON() : value
}

const until = (pred, ms = 20000) => new Promise((resolve) => {
  const started = Date.now()
  const tick = () => {
    const v = pred()
    if (v) return resolve({ ok: true, value: v === true ? null : v })
    if (Date.now() - started > ms) return resolve({ ok: false, error: 'timeout', objects: objects.toJSON() })
    setTimeout(tick, 10)
  }
  tick()
})

const handlers = {
  synced: () => until(() => provider.synced),
  add: ({ id, object }) => {
    doc.transact(() => {
      const map = new Y.Map()
      map.set('@deleted', false)
      map.set('@meta', new Y.Map())
      for (const [k, v] of Object.entries(object)) map.set(k, toY(v))
      objects.set(id, map)
    })
    return { ok: true }
  },
  set: ({ id, field, value }) => {
    objects.get(id).set(field, value)
    return { ok: true }
  },
  insert: ({ id, field, index, text }) => {
    objects.get(id).get(field).insert(index, text)
    return { ok: true }
  },
  remove_entry: ({ id }) => {
    objects.delete(id)
    return { ok: true }
  },
  wait: ({ id, field, equals }) =>
    until(() => JSON.stringify(fieldJson(id, field)) === JSON.stringify(equals)),
  get: () => ({ ok: true, value: objects.toJSON() }),
  wait_close: () => until(() => closes.length > 0 && closes.shift()),
  presence: ({ state }) => {
    provider.awareness.setLocalState(state)
    return { ok: true }
  },
  wait_peers: ({ count }) => until(() => {
    const others = [...provider.awareness.getStates().keys()].filter((c) => c !== doc.clientID)
    return others.length === count
  }),
  token: ({ token }) => {
    provider.params = { ...provider.params, token }
    return { ok: true }
  },
  quit: () => {
    provider.destroy()
    process.stdout.write(JSON.stringify({ ok: true }) + '\n', () => process.exit(0))
    return null
  }
}

const lines = readline.createInterface({ input: process.stdin })
let queue = Promise.resolve()
lines.on('line', (line) => {
  queue = queue.then(async () => {
    let answer
    try {
      const command = JSON.parse(line)
      answer = await handlers[command.cmd](command)
    } catch (e) {
      answer = { ok: false, error: String(e) }
    }
    if (answer !== null) process.stdout.write(JSON.stringify(answer) + '\n')
  })
})
lines.on('close', () => { provider.destroy(); process.exit(0) })
