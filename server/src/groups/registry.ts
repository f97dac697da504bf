/**
 * The consumer groups of a gateway: one Group (group.ts) per (topic, name), created by its first
 * member and kept while it has members or leases; the log's entries fed to it as they are stored
 * (or read from the store when it is behind); its state saved after every change that matters
 * (acknowledgements, dead letters, settings), once per event-loop turn; its dead letters appended
 * to their topic; its lease deadlines and retries woken by one timer per group.
 *
 * Transports call `join`, `leave`, `ack`, `nack`, `grant` with a Member (group.ts) of their own: a
 * WebSocket subscription (session.ts), or an HTTP consumer (http/groups.ts).
 */
import { decodeValue, encodeValue, splitEntry, decodeEntry } from '@sluice/client/protocol';
import type { CursorReader } from '../core/start.js';
import type { Following, TopicLog } from '../log/log.js';
import type { Metrics } from '../metrics.js';
import { Group, NotLeased, type Death, type GroupSettings, type GroupSnapshot, type Member } from './group.js';

export { NotLeased, type GroupSettings, type Member } from './group.js';

/** Group defaults from Config; the dead-letter topic defaults to `<topic>.dlq`. */
export type GroupDefaults = Omit<GroupSettings, 'deadLetterTopic'>;

export interface GroupsDeps {
  store: TopicLog;
  reader: CursorReader;
  metrics: Metrics;
  defaults: GroupDefaults;
}

/** A group name: 1–128 bytes of `A-Z a-z 0-9 _ - . :`. Null when valid, else why not. */
export function groupError(name: unknown): string | null {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(name)) return 'a group name is 1-128 characters of A-Z a-z 0-9 _ - . :';
  return null;
}

interface Entry {
  group: Group;
  following: Following | undefined;
  /** Last offset the store said it has. */
  head: number;
  reading: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  wakeAt: number;
  saving: boolean;
  /** The floor of the last snapshot that is durable (the admin API's ack floor). */
  savedFloor: number;
  /** Members and HTTP consumers that joined and did not leave. */
  users: number;
}

const key = (topic: string, name: string) => `${topic}\0${name}`;

export class Groups {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly unwatch: () => void;
  private dirty = new Set<Entry>();
  private saveScheduled = false;

  constructor(private readonly deps: GroupsDeps) {
    this.unwatch = deps.store.watch((topic, first, entries) => this.onAppend(topic, first, entries));
  }

  close(): void {
    this.unwatch();
    for (const e of this.entries.values()) {
      if (e.timer) clearTimeout(e.timer);
      e.following?.drop();
    }
    this.entries.clear();
  }

  /** The group, loaded or created (`from`: where a new group starts; default the head + 1). */
  async open(topic: string, name: string, from?: number): Promise<Group> {
    return (await this.entry(topic, name, from)).group;
  }

  /** Adds a member; the group starts handing it leases. */
  async join(topic: string, name: string, member: Member, from?: number): Promise<{ group: Group; epoch: string; head: number }> {
    const e = await this.entry(topic, name, from);
    e.users++;
    e.group.join(member);
    const info = await this.deps.store.info(topic);
    e.head = Math.max(e.head, info.head);
    this.pump(e);
    return { group: e.group, epoch: info.epoch, head: info.head };
  }

  leave(topic: string, name: string, member: Member): void {
    const e = this.entries.get(key(topic, name));
    if (!e) return;
    e.group.leave(member);
    e.users--;
    this.pump(e);
  }

  /** Acknowledges offsets; returns the ones refused (not leased to this member). */
  ack(topic: string, name: string, member: Member, offsets: readonly number[]): NotLeased[] {
    const e = this.entries.get(key(topic, name));
    const refused: NotLeased[] = [];
    for (const o of offsets) {
      try {
        if (!e) throw new NotLeased(o);
        e.group.ack(member, o);
      } catch (err) {
        if (!(err instanceof NotLeased)) throw err;
        refused.push(err);
      }
    }
    if (e) this.pump(e);
    return refused;
  }

  /** Gives an offset back (delivered again after `delayMs` or the backoff). Throws NotLeased. */
  nack(topic: string, name: string, member: Member, offset: number, delayMs?: number, reason?: string): void {
    const e = this.entries.get(key(topic, name));
    if (!e) throw new NotLeased(offset);
    const death = e.group.nack(member, offset, Date.now(), delayMs, reason);
    if (death) this.bury(e, death);
    this.pump(e);
  }

  /** More credit for a member. */
  grant(topic: string, name: string, member: Member, n: number, max: number): void {
    member.window = Math.min(member.window + n, max);
    const e = this.entries.get(key(topic, name));
    if (e) this.pump(e);
  }

  /** Hands out what is ready (after a member's credit or window changed). */
  poke(topic: string, name: string): void {
    const e = this.entries.get(key(topic, name));
    if (e) this.pump(e);
  }

  /** The groups of a topic known here (loaded), with what the admin API shows. */
  loaded(topic: string): { group: Group; savedFloor: number }[] {
    const out: { group: Group; savedFloor: number }[] = [];
    for (const e of this.entries.values()) if (e.group.topic === topic) out.push({ group: e.group, savedFloor: e.savedFloor });
    return out;
  }

  /** Changes a group's settings (admin), saved at once. */
  async configure(topic: string, name: string, settings: Partial<GroupSettings>): Promise<Group> {
    const e = await this.entry(topic, name);
    e.group.settings = { ...e.group.settings, ...settings };
    e.group.dirty = true;
    await this.saveNow(e);
    return e.group;
  }

  /** Moves a group's position (admin): to an offset, or to the first message stored at or after a time. */
  async reset(topic: string, name: string, to: { offset?: number; at?: number }): Promise<Group> {
    const e = await this.entry(topic, name);
    let offset = to.offset;
    if (offset === undefined) offset = await this.offsetAt(topic, to.at ?? Date.now());
    e.group.reset(Math.max(1, offset));
    await this.saveNow(e);
    this.pump(e);
    return e.group;
  }

  /**
   * Appends a group's dead letters back to their origin topic (admin replay): each as a new message
   * with its data and original headers; returns how many.
   */
  async replay(topic: string, name: string): Promise<number> {
    const e = await this.entry(topic, name);
    const dlq = e.group.settings.deadLetterTopic;
    let from = 1;
    let n = 0;
    for (;;) {
      const chunk = await this.deps.reader.read(dlq, from);
      const inputs = [];
      for (const entry of chunk.entries) {
        const m = decodeEntry(entry);
        if (m.headers?.['sluice-origin-topic'] !== topic || m.headers['sluice-group'] !== name) continue;
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(m.headers)) if (!k.startsWith('sluice-')) headers[k] = v;
        const input: { data: Uint8Array; headers?: Uint8Array } = { data: splitEntry(entry).data };
        if (Object.keys(headers).length > 0) input.headers = encodeValue(headers);
        inputs.push(input);
      }
      if (inputs.length > 0) await this.deps.store.append(topic, inputs);
      n += inputs.length;
      if (chunk.entries.length === 0) break;
      from = chunk.start + chunk.entries.length;
    }
    return n;
  }

  // ---- internals -------------------------------------------------------------------------------

  private async entry(topic: string, name: string, from?: number): Promise<Entry> {
    const k = key(topic, name);
    const found = this.entries.get(k);
    if (found) return found;
    let p = this.loading.get(k);
    if (!p) {
      p = this.load(topic, name, from).finally(() => this.loading.delete(k));
      this.loading.set(k, p);
    }
    return p;
  }

  private async load(topic: string, name: string, from?: number): Promise<Entry> {
    const { store, defaults } = this.deps;
    const following = store.follow?.(topic);
    if (following) await following.ready;
    const [saved, info] = await Promise.all([store.loadGroup(topic, name), store.info(topic)]);
    const snapshot = saved ? (decodeValue(saved) as GroupSnapshot) : undefined;
    const start = from === undefined ? info.head + 1 : Math.min(Math.max(from, info.first), info.head + 1);
    const group = new Group(topic, name, start, { ...defaults, deadLetterTopic: `${topic}.dlq` }, snapshot);
    const e: Entry = {
      group, following, head: info.head, reading: false, timer: undefined, wakeAt: Infinity, saving: false,
      savedFloor: snapshot ? snapshot.floor : group.floor, users: 0,
    };
    this.entries.set(key(topic, name), e);
    if (!snapshot) await this.saveNow(e); // a new group keeps its position across restarts
    return e;
  }

  /** Offers new entries to the groups of a topic that are at the tail; others read the store. */
  private onAppend(topic: string, first: number, entries: readonly Uint8Array[]): void {
    for (const e of this.entries.values()) {
      if (e.group.topic !== topic) continue;
      e.head = Math.max(e.head, first + entries.length - 1);
      if (!e.reading && e.group.next === first) e.group.offer(first, entries);
      this.pump(e);
    }
  }

  /** Dispatches, reads more of the log when the group is behind, expires leases, saves, rearms. */
  private pump(e: Entry): void {
    const g = e.group;
    const now = Date.now();
    for (const death of g.expire(now)) this.bury(e, death);
    g.dispatch(now);
    if (!e.reading && g.next <= e.head && g.room() > 0 && g.members.length > 0) void this.read(e);
    if (g.dirty) this.save(e);
    this.arm(e);
  }

  private async read(e: Entry): Promise<void> {
    e.reading = true;
    try {
      const g = e.group;
      const chunk = await this.deps.reader.read(g.topic, g.next, g.room());
      e.head = Math.max(e.head, chunk.head);
      if (chunk.gap) g.skipTo(chunk.start);
      g.offer(chunk.start, chunk.entries);
    } catch (err) {
      this.deps.metrics.handlerFailures.inc();
      console.error(`sluice: group ${e.group.name} of ${e.group.topic} could not read its topic`, err);
    } finally {
      e.reading = false;
    }
    this.pump(e);
  }

  /** One timer per group, at its next lease deadline or retry. */
  private arm(e: Entry): void {
    const at = e.group.nextWake();
    if (at === e.wakeAt) return;
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    e.wakeAt = at;
    if (at === Infinity) return;
    e.timer = setTimeout(() => {
      e.timer = undefined;
      e.wakeAt = Infinity;
      this.pump(e);
    }, Math.max(0, at - Date.now()));
    e.timer.unref?.();
  }

  /** Appends a dead letter with where it came from; the message is done once that is stored. */
  private bury(e: Entry, d: Death): void {
    const g = e.group;
    const parts = splitEntry(d.entry);
    const original = parts.headers ? (decodeValue(parts.headers) as Record<string, string>) : {};
    const headers = {
      ...original,
      'sluice-origin-topic': g.topic,
      'sluice-origin-offset': String(d.offset),
      'sluice-group': g.name,
      'sluice-attempts': String(d.attempts),
      'sluice-reason': d.reason.slice(0, 256),
    };
    this.deps.store.append(g.settings.deadLetterTopic, [{ data: parts.data, headers: encodeValue(headers) }]).then(
      () => { g.buried(d.offset); this.pump(e); },
      (err: unknown) => {
        console.error(`sluice: dead-lettering offset ${d.offset} of ${g.topic} (group ${g.name}) failed; it will be tried again`, err);
        g.unburied(d.offset, Date.now());
        this.pump(e);
      },
    );
  }

  /** Saves dirty groups once per loop turn. */
  private save(e: Entry): void {
    this.dirty.add(e);
    if (this.saveScheduled) return;
    this.saveScheduled = true;
    setImmediate(() => {
      this.saveScheduled = false;
      const todo = [...this.dirty];
      this.dirty.clear();
      for (const x of todo) void this.saveNow(x);
    });
  }

  private async saveNow(e: Entry): Promise<void> {
    if (e.saving) {
      this.dirty.add(e); // saved again after the one in flight
      return;
    }
    e.saving = true;
    const g = e.group;
    g.dirty = false;
    const snapshot = g.snapshot();
    try {
      await this.deps.store.saveGroup(g.topic, g.name, encodeValue(snapshot));
      e.savedFloor = snapshot.floor;
    } catch (err) {
      g.dirty = true;
      console.error(`sluice: saving group ${g.name} of ${g.topic} failed; retrying with the next change`, err);
    } finally {
      e.saving = false;
    }
    if (this.dirty.has(e) || g.dirty) {
      this.dirty.delete(e);
      this.save(e);
    }
  }

  /** The first offset stored at or after `ts` (binary search over the log by reads). */
  private async offsetAt(topic: string, ts: number): Promise<number> {
    const info = await this.deps.store.info(topic);
    let lo = info.first;
    let hi = info.head + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const r = await this.deps.store.read(topic, mid, { limit: 1 });
      const entry = r.entries[0];
      if (!entry || decodeEntry(entry).ts >= ts) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
