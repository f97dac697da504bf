/**
 * Raw uWebSockets.js: the reference for what Node can deliver on this machine. No protocol at all:
 * each message a publisher sends is handed to `app.publish(topic, message)` as it arrived, one
 * WebSocket frame per message, and uWS fans it out from C++.
 *
 *   ws://127.0.0.1:PORT/?role=sub&topic=N   subscribes to topic tN (no topic: connects only)
 *   ws://127.0.0.1:PORT/?role=pub           every message is published to the topic its payload names
 *
 * Backpressure settings mirror the Sluice gateway's (16 MiB per socket, close beyond it), so the
 * two differ only in what Sluice adds. Prints `listening PORT` when ready.
 */
import { App, us_listen_socket_close, us_socket_local_port, type us_listen_socket } from 'uWebSockets.js';
import { readTopicIndex } from '../payload.js';

interface UserData {
  role: string;
  topic: number;
}

const port = Number(process.argv[2] ?? 0);
const app = App();
app.ws<UserData>('/*', {
  maxPayloadLength: 1024 * 1024,
  maxBackpressure: 16 * 1024 * 1024,
  closeOnBackpressureLimit: true,
  idleTimeout: 40,
  sendPingsAutomatically: true,
  upgrade: (res, req, context) => {
    const role = req.getQuery('role') ?? 'sub';
    const topic = Number(req.getQuery('topic') ?? -1);
    res.upgrade<UserData>(
      { role, topic },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    const d = ws.getUserData();
    if (d.role === 'sub' && d.topic >= 0) ws.subscribe(`t${d.topic}`);
    ws.send('ok');
  },
  message: (ws, message) => {
    if (ws.getUserData().role !== 'pub') return;
    app.publish(`t${readTopicIndex(new Uint8Array(message))}`, message, true);
  },
});

let listenSocket: us_listen_socket | undefined;
app.listen('127.0.0.1', port, (s) => {
  if (!s) {
    console.error('uws-server: cannot listen');
    process.exit(1);
  }
  listenSocket = s;
  console.log(`listening ${us_socket_local_port(s)}`);
});
process.on('SIGTERM', () => {
  if (listenSocket) us_listen_socket_close(listenSocket);
  process.exit(0);
});
