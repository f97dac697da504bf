/**
 * The `ws` package with a broadcast loop: the common hand-rolled Node pub/sub. The server keeps a
 * set of sockets per topic and, for each published message, calls `send` on every socket of the
 * topic (one frame, one write each).
 *
 *   ws://127.0.0.1:PORT/?role=sub&topic=N   joins topic N (no topic: connects only)
 *   ws://127.0.0.1:PORT/?role=pub           every message is sent to the topic its payload names
 *
 * Prints `listening PORT` when ready.
 */
import { WebSocketServer, WebSocket } from 'ws';
import { readTopicIndex } from '../payload.js';

const port = Number(process.argv[2] ?? 0);
const topics = new Map<number, Set<WebSocket>>();
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 1024 * 1024 });

wss.on('connection', (ws, req) => {
  const q = new URL(req.url ?? '/', 'http://localhost').searchParams;
  ws.on('error', () => undefined);
  if (q.get('role') === 'pub') {
    ws.on('message', (data: Buffer) => {
      const set = topics.get(readTopicIndex(data));
      if (!set) return;
      for (const client of set) if (client.readyState === WebSocket.OPEN) client.send(data, { binary: true });
    });
    ws.send('ok');
    return;
  }
  const topic = Number(q.get('topic') ?? -1);
  if (topic >= 0) {
    let set = topics.get(topic);
    if (!set) topics.set(topic, (set = new Set()));
    set.add(ws);
    ws.on('close', () => set.delete(ws));
  }
  ws.send('ok');
});

wss.on('listening', () => {
  const a = wss.address();
  console.log(`listening ${typeof a === 'object' && a ? a.port : port}`);
});
process.on('SIGTERM', () => process.exit(0));
