/**
 * One topic's retained entries in the memory store, copied back to back into append-only chunks,
 * so that no retained message is a JavaScript object of its own (issue 16: the garbage collector).
 *
 * Before, the memory store kept each entry as its own `Uint8Array` with its own malloc'ed
 * ArrayBuffer, and every one of them survived its first scavenges: V8 copied it, tracked its
 * backing store, and promoted it. Here a topic's bytes live in chunks of 256 B to 64 KiB, and the
 * position of each entry in a `Uint32Array`: a chunk holds hundreds of messages as one object.
 *
 * Lifetimes: a chunk's bytes are written once, when an entry is appended, and never moved or
 * rewritten; a chunk is dropped (left to the GC) once retention removed all of its entries. So a
 * view that `append`, `get` or `range` hand out MUST stay valid and unchanged for as long as
 * anyone holds it, whatever the topic does later: it pins its chunk, not the topic's other chunks.
 * (The hub's per-topic cache holds such views; see Hub `cacheBatch`.)
 *
 * Memory: a new chunk is sized to the topic's retained bytes, rounded up to a power of two from
 * 256 B to 64 KiB (an entry larger than that gets a chunk of its own size). A chunk is ended only
 * by an entry that does not fit its free room, so the room it leaves unused is smaller than that
 * entry, which is kept (retention removes oldest first). Hence a topic allocates at most twice its
 * live bytes plus 128 KiB (the newest chunk's free room and the removed head of the oldest). A
 * topic's `bytes` counts its entries only, exactly as before.
 */

/** Smallest and largest chunk a topic's entries are copied into (an entry larger than the largest gets its own). */
export const MIN_CHUNK = 256;
export const MAX_CHUNK = 64 * 1024;

class Chunk {
  /** The chunk's memory (views are made on it with the constructor: cheaper than `subarray`). */
  readonly buffer: ArrayBuffer;
  /** ends[i]: where entry `first + i` ends in `buffer` (it starts where entry i − 1 ends, or at 0). */
  private ends: Uint32Array;
  /** Entries written. */
  n = 0;
  /** Bytes written. */
  used = 0;

  constructor(
    /** Offset of the chunk's first entry. */
    readonly first: number,
    capacity: number,
  ) {
    this.buffer = new ArrayBuffer(capacity);
    this.ends = new Uint32Array(Math.max(8, capacity >>> 8));
  }

  room(): number {
    return this.buffer.byteLength - this.used;
  }

  /** Takes the next `size` bytes (at most `room()`) for a new entry; returns them. */
  add(size: number): Uint8Array {
    if (this.n === this.ends.length) {
      const ends = new Uint32Array(this.n * 2);
      ends.set(this.ends);
      this.ends = ends;
    }
    const start = this.used;
    this.used += size;
    this.ends[this.n++] = this.used;
    return new Uint8Array(this.buffer, start, size);
  }

  /** Where entry i (0-based within the chunk) starts. */
  start(i: number): number {
    return i === 0 ? 0 : this.ends[i - 1]!;
  }

  end(i: number): number {
    return this.ends[i]!;
  }
}

export class TopicBytes {
  /** Chunks in offset order; chunks[0] holds `first` (its entries before it are removed). */
  private readonly chunks: Chunk[] = [];
  /** Offset of the oldest entry kept (equal to `next` when none is). */
  first: number;
  /** Offset the next appended entry gets: entries are appended densely. */
  next: number;
  /** Bytes of the entries kept. */
  bytes = 0;

  constructor(first: number) {
    this.first = first;
    this.next = first;
  }

  /** Copies `entry` in as offset `next`; returns the stored copy (a view, see the header). */
  append(entry: Uint8Array): Uint8Array {
    const view = this.reserve(entry.length);
    view.set(entry);
    return view;
  }

  /**
   * Adds an entry of `size` bytes as offset `next` and returns its room (a view, see the header),
   * which the caller MUST fill at once: the store encodes entries in place this way.
   */
  reserve(size: number): Uint8Array {
    let c = this.chunks[this.chunks.length - 1];
    if (!c || c.room() < size) {
      let capacity = MIN_CHUNK;
      while (capacity < MAX_CHUNK && capacity < this.bytes + size) capacity *= 2;
      c = new Chunk(this.next, Math.max(capacity, size));
      this.chunks.push(c);
    }
    this.next++;
    this.bytes += size;
    return c.add(size);
  }

  /** The entry at `offset` (a view), or undefined when it is not kept. */
  get(offset: number): Uint8Array | undefined {
    if (offset < this.first || offset >= this.next) return undefined;
    const c = this.chunks[this.chunkIndex(offset)]!;
    const i = offset - c.first;
    const start = c.start(i);
    return new Uint8Array(c.buffer, start, c.end(i) - start);
  }

  /**
   * Entries from `from` up to `to` (inclusive): at most `limit`, and beyond the first only while
   * their sizes sum to at most `maxBytes`; views, see the header.
   */
  range(from: number, to: number, limit: number, maxBytes: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let o = Math.max(from, this.first);
    const last = Math.min(to, this.next - 1);
    if (o > last) return out;
    let k = this.chunkIndex(o);
    let sum = 0;
    while (o <= last && out.length < limit) {
      let c = this.chunks[k]!;
      if (o >= c.first + c.n) c = this.chunks[++k]!;
      const i = o - c.first;
      const start = c.start(i);
      const end = c.end(i);
      if (out.length > 0 && sum + end - start > maxBytes) break;
      sum += end - start;
      out.push(new Uint8Array(c.buffer, start, end - start));
      o++;
    }
    return out;
  }

  /** Removes the oldest entry kept; returns its size (0: none was kept). */
  dropFirst(): number {
    if (this.first >= this.next) return 0;
    const c = this.chunks[0]!;
    const i = this.first - c.first;
    const size = c.end(i) - c.start(i);
    this.first++;
    this.bytes -= size;
    if (i + 1 === c.n) this.chunks.shift();
    return size;
  }

  /** The index of the chunk holding `offset` (first ≤ offset < next). */
  private chunkIndex(offset: number): number {
    const chunks = this.chunks;
    let hi = chunks.length - 1;
    // Most reads are of the newest entries.
    if (chunks[hi]!.first <= offset) return hi;
    let lo = 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (chunks[mid]!.first <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
