/**
 * RabbitMQ, for the queue scenario only: the broker already running on this machine (not started
 * by the bench: `BENCH_AMQP_URL`, default amqp://guest:guest@127.0.0.1:5672). Each start declares a
 * durable classic queue whose name is unique to the run, and stop deletes it; the queue also
 * carries `x-expires` (15 min unused), so a bench killed before its stop leaves nothing behind for
 * long. The broker is left as it is: its configuration, and its CPU affinity — it is not pinned to
 * the server core like the bench's own servers, so its schedulers may use the client core too.
 * Its CPU is read from /proc like every server's (the `beam.smp` process running RabbitMQ).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'amqplib';
import { AmqpPublisher } from '../clients/amqp-publisher.js';
import { AMQP_SOCKET } from '../clients/amqp-member.js';
import { NotAvailable, type PublisherOptions, type RunningTarget, type Target } from './target.js';

export const AMQP_URL_ENV = 'BENCH_AMQP_URL';
const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';
const QUEUE_EXPIRES_MS = 15 * 60_000;

/** The URL without its password, for the report. */
function shown(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** The pid of the Erlang VM running RabbitMQ, or NaN (then its CPU is not known). */
function brokerPid(): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() !== 'beam.smp') continue;
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('rabbit')) return Number(d);
    } catch {
      // the process ended
    }
  }
  return Number.NaN;
}

class RabbitMqTarget implements Target {
  readonly id = 'rabbitmq' as const;
  readonly label = 'RabbitMQ';

  unavailable(): string | undefined {
    return undefined; // known only by connecting: start() says why it cannot
  }

  async start(): Promise<RunningTarget> {
    const url = process.env[AMQP_URL_ENV] ?? DEFAULT_URL;
    let admin;
    try {
      admin = await connect(url, AMQP_SOCKET);
    } catch (err) {
      throw new NotAvailable(`RabbitMQ not reachable at ${shown(url)}: ${(err as Error).message}`);
    }
    admin.on('error', () => undefined);
    const ch = await admin.createChannel();
    const queue = `sluice-bench-${process.pid}-${randomBytes(4).toString('hex')}`;
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic', 'x-expires': QUEUE_EXPIRES_MS } });
    const props = admin.connection.serverProperties as Record<string, unknown>;
    const never = new Promise<number | null>(() => undefined);
    return {
      id: this.id,
      pid: brokerPid(),
      version: `RabbitMQ ${String(props.version ?? '?')}, the broker at ${shown(url)} (not started by the bench)`,
      exited: never,
      output: () => '',
      subscriber: (o = {}) => ({ kind: 'amqp', url, prefix: '', queue, credit: o.credit ?? 64 }),
      publisher: (o: PublisherOptions = {}) => AmqpPublisher.open({ url, queue, window: o.window ?? 1024 }),
      stop: async () => {
        await ch.deleteQueue(queue).catch(() => undefined);
        await admin.close().catch(() => undefined);
      },
    };
  }
}

export const rabbitMqTarget = new RabbitMqTarget();
