/**
 * The three peer servers written for the bench in Node (raw uWS, ws, Socket.IO): each is a
 * program under servers/ run as its own pinned process that prints `listening PORT`.
 */
import { fileURLToPath } from 'node:url';
import { PlainPublisher } from '../clients/plain-publisher.js';
import { SocketIoPublisher } from '../clients/socketio-publisher.js';
import { launch } from './server-process.js';
import type { RunningTarget, StartOptions, Target, TargetId } from './target.js';

export function program(name: string): string {
  return fileURLToPath(new URL(`../servers/${name}.js`, import.meta.url));
}

class NodePeer implements Target {
  constructor(
    readonly id: TargetId,
    readonly label: string,
    private readonly script: string,
    private readonly kind: 'plain' | 'socketio',
  ) {}

  unavailable(): string | undefined {
    return undefined;
  }

  async start(opts: StartOptions = {}): Promise<RunningTarget> {
    const args = [program(this.script), '0'];
    if (opts.resume && this.kind === 'socketio') args.push('--recovery');
    const p = await launch(process.execPath, args, { readyPattern: /listening (\d+)/ });
    const url = `ws://127.0.0.1:${p.ready}`;
    const kind = this.kind;
    return {
      id: this.id,
      pid: p.pid,
      exited: p.exited,
      output: () => p.output(),
      subscriber: () => ({ kind, url, prefix: 't', recovery: opts.resume === true }),
      publisher: async () => (kind === 'plain' ? PlainPublisher.open(url) : SocketIoPublisher.open(url)),
      stop: () => p.stop(),
    };
  }
}

export const uwsTarget = new NodePeer('uws', 'raw uWS', 'uws-server', 'plain');
export const wsTarget = new NodePeer('ws', 'ws', 'ws-server', 'plain');
export const socketIoTarget = new NodePeer('socketio', 'Socket.IO', 'socketio-server', 'socketio');
