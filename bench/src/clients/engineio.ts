/**
 * The few Engine.IO v4 / Socket.IO v5 packets the bench speaks over a raw WebSocket, so Socket.IO
 * subscribers cost what its wire costs and not what socket.io-client costs.
 *
 *   server → `0{...}` open          client → `40` (or `40{"pid","offset"}` to recover)
 *   server → `40{"sid","pid"?}`     connected to the main namespace
 *   server → `2` ping               client → `3` pong
 *   `42["event",...args]`           an event; `42<id>[...]` asks for an ack, answered `43<id>[...]`
 *
 * With connection state recovery each broadcast event carries one more argument: its offset.
 */

export const PATH = '/socket.io/?EIO=4&transport=websocket';

export const enum Byte {
  Zero = 48, // '0' open
  One = 49,
  Two = 50, // '2' ping / EVENT
  Three = 51, // '3' pong / ACK
  Four = 52, // '4' message
  Quote = 34,
}

/** `42["m","<payload>"...` : where the payload of an 'm' event starts. */
export const M_PAYLOAD_AT = 8;

export function isEvent(b: Uint8Array, name: number): boolean {
  return b[0] === Byte.Four && b[1] === Byte.Two && b[2] === 91 /* [ */ && b[3] === Byte.Quote && b[4] === name && b[5] === Byte.Quote;
}

export function connectPacket(resume?: { pid: string; offset: string }): string {
  return resume ? `40${JSON.stringify(resume)}` : '40';
}

export function eventPacket(name: string, args: unknown[], ackId?: number): string {
  return `42${ackId ?? ''}${JSON.stringify([name, ...args])}`;
}

/** `43<id>[...]` → id, or -1. */
export function ackId(text: string): number {
  if (!text.startsWith('43')) return -1;
  const m = /^43(\d+)/.exec(text);
  return m ? Number(m[1]) : -1;
}

/**
 * The offset a recovery-enabled server appends to an 'm' event: `42["m","<payload>","<offset>"]`.
 * Returns undefined when the event carries none.
 */
export function eventOffset(b: Uint8Array, payloadEnd: number): string | undefined {
  // payloadEnd points at the closing quote of the payload; an offset follows as ,"..."
  if (b[payloadEnd + 1] !== 44 /* , */) return undefined;
  const start = payloadEnd + 3;
  let end = start;
  while (end < b.length && b[end] !== Byte.Quote) end++;
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}
