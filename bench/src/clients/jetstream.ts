/**
 * The slice of the JetStream API the bench uses, as requests over a NatsConnection: create a
 * stream (limits or work-queue retention), create an ephemeral pull consumer from a stream
 * sequence or a durable one with explicit acks, and pull. Subjects and JSON
 * shapes are those of the JetStream wire API (`$JS.API.*`), as nats-server 2.9 answers them.
 */
import type { NatsConnection } from './nats-connection.js';

interface ApiReply {
  error?: { code: number; description: string };
  name?: string;
  seq?: number;
  stream?: string;
}

async function call(c: NatsConnection, subject: string, body: unknown): Promise<ApiReply> {
  const reply = JSON.parse(Buffer.from(await c.request(subject, body)).toString('utf8')) as ApiReply;
  if (reply.error) throw new Error(`${subject}: ${reply.error.description} (${reply.error.code})`);
  return reply;
}

/** A file-backed stream capturing `subjects`. */
export async function createStream(c: NatsConnection, name: string, subjects: string[]): Promise<void> {
  await call(c, `$JS.API.STREAM.CREATE.${name}`, {
    name,
    subjects,
    storage: 'file',
    retention: 'limits',
    discard: 'old',
    max_msgs: -1,
    max_bytes: -1,
    num_replicas: 1,
  });
}

/**
 * A file-backed work-queue stream capturing `subjects`: a message is removed once a consumer
 * acknowledged it (retention "workqueue").
 */
export async function createWorkQueue(c: NatsConnection, name: string, subjects: string[]): Promise<void> {
  await call(c, `$JS.API.STREAM.CREATE.${name}`, {
    name,
    subjects,
    storage: 'file',
    retention: 'workqueue',
    discard: 'old',
    max_msgs: -1,
    max_bytes: -1,
    num_replicas: 1,
  });
}

/**
 * A durable pull consumer of the whole stream with explicit acks: every message is acknowledged
 * on its own, and one not acknowledged within `ackWaitMs` is delivered again (to any puller).
 */
export async function createDurablePull(c: NatsConnection, stream: string, name: string, o: { ackWaitMs: number; maxAckPending: number }): Promise<void> {
  await call(c, `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.${name}`, {
    stream_name: stream,
    config: {
      durable_name: name,
      deliver_policy: 'all',
      ack_policy: 'explicit',
      ack_wait: o.ackWaitMs * 1_000_000,
      max_deliver: -1,
      max_ack_pending: o.maxAckPending,
    },
  });
}

/**
 * An ephemeral pull consumer of `subject` starting at stream sequence `from`. Ack policy "all":
 * acknowledging a message acknowledges every earlier one, so a reader acks once per batch.
 */
export async function createPullConsumer(c: NatsConnection, stream: string, subject: string, from: number): Promise<string> {
  const reply = await call(c, `$JS.API.CONSUMER.CREATE.${stream}`, {
    stream_name: stream,
    config: {
      deliver_policy: 'by_start_sequence',
      opt_start_seq: Math.max(1, from),
      ack_policy: 'all',
      filter_subject: subject,
      max_ack_pending: 100_000,
      inactive_threshold: 60_000_000_000,
    },
  });
  if (!reply.name) throw new Error('consumer create: no name in the reply');
  return reply.name;
}

/** Asks the consumer for `batch` more messages, delivered to `inbox`. */
export function pull(c: NatsConnection, stream: string, consumer: string, inbox: string, batch: number): void {
  c.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify({ batch }), inbox);
}

/** The stream sequence in a JetStream delivery's reply subject `$JS.ACK.<stream>.<consumer>.<n>.<sseq>.<cseq>.<ts>.<pending>`. */
export function streamSeq(reply: string): number {
  const parts = reply.split('.');
  if (parts.length === 9) return Number(parts[5]); // v1 form
  if (parts.length >= 11) return Number(parts[7]); // v2 form: domain and account hash added
  return Number.NaN;
}

/** How many times the message was delivered (1 = first), from a JetStream delivery's reply subject. */
export function deliveryCount(reply: string): number {
  const parts = reply.split('.');
  if (parts.length === 9) return Number(parts[4]); // v1 form
  if (parts.length >= 11) return Number(parts[6]); // v2 form
  return Number.NaN;
}
