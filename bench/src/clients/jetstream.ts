/**
 * The slice of the JetStream API the bench uses, as requests over a NatsConnection: create a
 * stream, create an ephemeral pull consumer from a stream sequence, and pull. Subjects and JSON
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
