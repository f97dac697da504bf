/**
 * Protocol limits and their defaults. The gateway may be configured with other values and announces
 * the ones in force in WELCOME; the constants here are the defaults and the hard bounds of the codec.
 */

/** Largest frame a gateway accepts by default (bytes). Announced as `maxFrame`. */
export const DEFAULT_MAX_FRAME = 1024 * 1024;

/** Credit a subscription starts with when SUB carries none. */
export const DEFAULT_CREDIT = 64;

/** Default cap on the credit outstanding on one subscription. Announced as `maxCredit`. */
export const DEFAULT_MAX_CREDIT = 4096;

/**
 * Default byte window of a subscription (since 1.5): bytes of messages a gateway sends on it after
 * its last CREDIT, to clients that speak 1.5. Announced as `maxWindowBytes`. Chosen by measurement
 * (bench/README.md, "Non-reading subscribers: the byte window").
 */
export const DEFAULT_MAX_WINDOW_BYTES = 1024 * 1024;

/** Most offsets one GROUP_ACK may carry (since 1.2). */
export const MAX_ACK_BATCH = 1000;

/** Default cap on subscriptions per connection. Announced as `maxSubscriptions`. */
export const DEFAULT_MAX_SUBSCRIPTIONS = 1000;

/** Default heartbeat (ms): a client pings when it heard nothing for this long. Announced as `heartbeat`. */
export const DEFAULT_HEARTBEAT_MS = 20_000;

/** Topic names: 1–255 bytes. */
export const MAX_TOPIC_BYTES = 255;

/** Idempotency keys: at most 128 bytes (UTF-8). */
export const MAX_KEY_BYTES = 128;
/** Highest message priority (since 1.3): 0 (the default) to 9. */
export const MAX_PRIORITY = 9;

/** Headers: at most this many entries, each name ≤ 128 bytes. */
export const MAX_HEADERS = 32;
export const MAX_HEADER_NAME_BYTES = 128;

/** Deepest nesting the decoder accepts in any frame (payload included). */
export const MAX_DEPTH = 64;

/**
 * Deepest nesting of a payload. In MSGS (`[15, topic, first, [[data, ts], ...]]`) data sits three
 * containers down, so a payload is accepted only if every frame that carries it stays within
 * MAX_DEPTH: publishing refuses what could not be delivered.
 */
export const MAX_PAYLOAD_DEPTH = MAX_DEPTH - 3;

/** Largest unsigned integer the protocol carries (offsets, ids, credit): 2^53 - 1. */
export const MAX_UINT = Number.MAX_SAFE_INTEGER;
