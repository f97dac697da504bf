/**
 * Socket.IO v4 with rooms: `io.to(room).emit('m', payload)` for each published message.
 *
 * Events (clients speak Engine.IO v4 / Socket.IO v5 over a raw WebSocket, see clients/engineio.ts):
 *   'sub' (room, ack)   joins the room
 *   'pub' (text)        emits 'm' with the text to room t<index named in the payload>
 *   'sync' (ack)        answers once every earlier event of this socket was handled
 *
 * Options:
 *   --recovery                  connection state recovery on (the resume scenario); otherwise off,
 *                               as it costs an offset per packet
 *   --redis URL [--adapter A]   one of several servers sharing one Redis (the cluster scenario):
 *                               A = pubsub (default), `@socket.io/redis-adapter`, the classic
 *                               adapter (every broadcast is PUBLISHed, every server receives it);
 *                               or streams, `@socket.io/redis-streams-adapter` (every broadcast is
 *                               XADDed to one stream that every server reads)
 * Prints `listening PORT` when ready (with --redis: once Redis answered).
 */
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { createAdapter as pubsubAdapter } from '@socket.io/redis-adapter';
import { createAdapter as streamsAdapter } from '@socket.io/redis-streams-adapter';
import { Server, type ServerOptions } from 'socket.io';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const port = Number(process.argv[2] ?? 0);
const recovery = process.argv.includes('--recovery');
const redisUrl = option('redis');
const adapterKind = option('adapter') ?? 'pubsub';

async function adapter(): Promise<Partial<ServerOptions>> {
  if (!redisUrl) return {};
  const client = new Redis(redisUrl);
  await client.ping();
  if (adapterKind === 'streams') return { adapter: streamsAdapter(client) };
  if (adapterKind !== 'pubsub') throw new Error(`--adapter must be pubsub or streams, got ${adapterKind}`);
  const sub = client.duplicate();
  await sub.ping();
  return { adapter: pubsubAdapter(client, sub) };
}

const http = createServer();
const io = new Server(http, {
  serveClient: false,
  transports: ['websocket'],
  perMessageDeflate: false,
  maxHttpBufferSize: 1024 * 1024,
  ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 10 * 60_000, skipMiddlewares: true } } : {}),
  ...(await adapter()),
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
