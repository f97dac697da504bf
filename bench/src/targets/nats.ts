/**
 * NATS: the bench's own nats-server instance (the Debian package), with its WebSocket listener
 * and, for the resume and publish scenarios, JetStream with a file store in a temp directory.
 * Ports are chosen by the server (-1) and read from its log.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, tempDir } from '../cleanup.js';
import { createStream } from '../clients/jetstream.js';
import { NatsConnection } from '../clients/nats-connection.js';
import { NatsPublisher } from '../clients/nats-publisher.js';
import { machine } from '../machine.js';
import { launch } from './server-process.js';
import type { PublisherOptions, RunningTarget, StartOptions, Target } from './target.js';

export const STREAM = 'BENCH';
export const SUBJECT_PREFIX = 't.';

class NatsTarget implements Target {
  readonly id = 'nats' as const;
  readonly label = 'NATS ws';

  unavailable(): string | undefined {
    return machine().versions['nats-server'] === 'not installed' ? 'nats-server not installed' : undefined;
  }

  async start(opts: StartOptions = {}): Promise<RunningTarget> {
    const dir = tempDir('sluice-bench-nats-');
    const jetstream = opts.resume === true;
    const conf = [
      'listen: "127.0.0.1:-1"',
      'max_payload: 1048576',
      'websocket {',
      '  listen: "127.0.0.1:-1"',
      '  no_tls: true',
      '  compression: false',
      '}',
      ...(jetstream ? ['jetstream {', `  store_dir: "${join(dir, 'js')}"`, '}'] : []),
    ].join('\n');
    const file = join(dir, 'nats.conf');
    writeFileSync(file, conf);
    const p = await launch('nats-server', ['-c', file], {
      readyPattern: /Listening for websocket clients on ws:\/\/[\d.]+:(\d+)[\s\S]*Server is ready/,
    }).catch((err: unknown) => {
      removeDir(dir);
      throw err;
    });
    const url = `ws://127.0.0.1:${p.ready}`;
    if (jetstream) {
      const c = await NatsConnection.open(url);
      await createStream(c, STREAM, [`${SUBJECT_PREFIX}>`]);
      c.close();
    }
    return {
      id: this.id,
      pid: p.pid,
      wsUrl: url,
      exited: p.exited,
      output: () => p.output(),
      subscriber: (o = {}) => (jetstream
        ? { kind: 'jetstream', url, prefix: SUBJECT_PREFIX, stream: STREAM, credit: o.credit ?? 64 }
        : { kind: 'nats', url, prefix: SUBJECT_PREFIX }),
      publisher: (o: PublisherOptions = {}) => NatsPublisher.open({
        url,
        prefix: SUBJECT_PREFIX,
        ...(o.jetstream ? { jetstream: { window: o.window ?? 1000 } } : {}),
      }),
      stop: async () => {
        await p.stop();
        removeDir(dir);
      },
    };
  }
}

export const natsTarget = new NatsTarget();
