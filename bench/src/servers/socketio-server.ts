/**
 * Socket.IO v4 with rooms: `io.to(room).emit('m', payload)` for each published message.
 *
 * Events (clients speak Engine.IO v4 / Socket.IO v5 over a raw WebSocket, see clients/engineio.ts):
 *   'sub' (room, ack)   joins the room
 *   'pub' (text)        emits 'm' with the text to room t<index named in the payload>
 *   'sync' (ack)        answers once every earlier event of this socket was handled
 *
 * `--recovery` turns on connection state recovery (the resume scenario); otherwise it is off, as it
 * costs an offset per packet. Prints `listening PORT` when ready.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.argv[2] ?? 0);
const recovery = process.argv.includes('--recovery');
const http = createServer();
const io = new Server(http, {
  serveClient: false,
  transports: ['websocket'],
  perMessageDeflate: false,
  maxHttpBufferSize: 1024 * 1024,
  ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 10 * 60_000, skipMiddlewares: true } } : {}),
});

io.on('connection', (socket) => {
  socket.on('sub', (room: string, ack?: () => void) => {
    void socket.join(room);
    ack?.();
  });
  socket.on('pub', (text: string) => {
    io.to(`t${Number(text.slice(28, 36))}`).emit('m', text);
  });
  socket.on('sync', (ack?: () => void) => ack?.());
});

http.listen(port, '127.0.0.1', () => {
  const a = http.address();
  console.log(`listening ${typeof a === 'object' && a ? a.port : port}`);
});
process.on('SIGTERM', () => process.exit(0));
