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
import type { Tracer } from '../core/trace.js';
import type { Nodes } from '../cluster/nodes.js';
import { GroupNotOwned, type Following, type TopicLog } from '../log/log.js';
import type { Metrics } from '../metrics.js';
import { GroupCluster, type AdminOp, type GroupHost, type Joined, type Locks } from './cluster.js';
import { Group, NotLeased, type Death, type GroupSettings, type GroupSnapshot, type Member } from './group.js';
import { logger } from '../logger.js';

export { NotLeased, type GroupSettings, type Member } from './group.js';
export type { Joined } from './cluster.js';

/** Group defaults from Config; the dead-letter topic defaults to `<topic>.dlq`. */
export type GroupDefaults = Omit<GroupSettings, 'deadLetterTopic'>;

export interface GroupsDeps {
  store: TopicLog;
  reader: CursorReader;
  metrics: Metrics;
  defaults: GroupDefaults;
  tracer?: Tracer;
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
  /** After a failed read: no read before this time (ms). */
  readAfter: number;
}

const key = (topic: string, name: string) => `${topic}\0${name}`;

export class Groups implements GroupHost {
  private readonly entries = new Map<string, Entry>();
  /** Cluster mode: members shared with other nodes (see cluster.ts); absent with one gateway. */
  private cluster: GroupCluster | undefined;
  nodeId = '';
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly unwatch: () => void;
  private dirty = new Set<Entry>();
  private saveScheduled = false;

  constructor(private readonly deps: GroupsDeps) {
    this.unwatch = deps.store.watch((topic, first, entries) => this.onAppend(topic, first, entries));
  }

  /**
   * Cluster mode: with a store that has group locks, each group runs on the node holding its lock
   * and members elsewhere are relayed to it over `nodes`. Call before the node is announced.
   */
  attach(nodes: Nodes): void {
    const store = this.deps.store;
    this.nodeId = nodes.id;
    if (!store.claimGroup) return;
    const locks: Locks = { claimGroup: (t, g, ttl) => store.claimGroup!(t, g, ttl) };
    if (store.releaseGroup) locks.releaseGroup = (t, g) => store.releaseGroup!(t, g);
    this.cluster = new GroupCluster(this, locks, nodes, () => [...this.entries.values()].map((e) => ({ topic: e.group.topic, name: e.group.name })));
  }

  /**
   * Stops: unsaved changes are saved, and in cluster mode the groups run here are let go at once,
   * so another node takes them without waiting for the lock to expire.
   */
  async close(): Promise<void> {
    this.cluster?.close();
    this.unwatch();
    const entries = [...this.entries.values()];
    for (const e of entries) {
      if (e.timer) clearTimeout(e.timer);
      e.following?.drop();
    }
    await Promise.all(entries.filter((e) => e.group.dirty).map((e) => this.saveNow(e)));
    this.entries.clear();
    const release = this.deps.store.releaseGroup?.bind(this.deps.store);
    if (release) await Promise.all(entries.map((e) => release(e.group.topic, e.group.name).catch(() => undefined)));
  }

  /**
   * The node that runs the group: this one (also when it just took it, being free), or another
   * node's id in cluster mode.
   */
  async ownerOf(topic: string, name: string): Promise<string> {
    if (!this.cluster || this.owns(topic, name)) return this.nodeId;
    return this.cluster.owner(topic, name);
  }

  /** The group, loaded or created (`from`: where a new group starts; default the head + 1). */
  async open(topic: string, name: string, from?: number): Promise<Group> {
    return (await this.entry(topic, name, from)).group;
  }

  /**
   * Adds a member; the group starts handing it leases. In cluster mode the group may run on another
   * node: the member is then relayed to it.
   */
  async join(topic: string, name: string, member: Member, from?: number): Promise<Joined> {
    if (!this.cluster || this.owns(topic, name)) return this.joinLocal(topic, name, member, from);
    return this.cluster.join(topic, name, member, await this.cluster.owner(topic, name), from);
  }

  leave(topic: string, name: string, member: Member): void {
    if (this.cluster?.relays(topic, name, member)) return this.cluster.leave(topic, name, member);
    this.leaveLocal(topic, name, member);
  }

  /** Acknowledges offsets; resolves with the ones refused (not leased to this member). */
  async ack(topic: string, name: string, member: Member, offsets: readonly number[]): Promise<number[]> {
    if (this.cluster?.relays(topic, name, member)) return this.cluster.ack(topic, name, member, offsets);
    return this.ackLocal(topic, name, member, offsets);
  }

  /** Gives an offset back (delivered again after `delayMs` or the backoff). Rejects with NotLeased. */
  async nack(topic: string, name: string, member: Member, offset: number, delayMs?: number, reason?: string): Promise<void> {
    if (this.cluster?.relays(topic, name, member)) return this.cluster.nack(topic, name, member, offset, delayMs, reason);
    this.nackLocal(topic, name, member, offset, delayMs, reason);
  }

  /** More credit for a member. */
  grant(topic: string, name: string, member: Member, n: number, max: number): void {
    member.window = Math.min(member.window + n, max);
    this.poke(topic, name);
  }

  /** Hands out what is ready (after a member's credit, window or blocked state changed). */
  poke(topic: string, name: string): void {
    if (this.owns(topic, name)) this.pokeLocal(topic, name);
    else this.cluster?.poke(topic, name);
  }

  // ---- the engine on this node (GroupHost) ---------------------------------------------------------

  owns(topic: string, name: string): boolean {
    return this.entries.has(key(topic, name));
  }

  async joinLocal(topic: string, name: string, member: Member, from?: number): Promise<Joined> {
    const e = await this.entry(topic, name, from);
    e.users++;
    e.group.join(member);
    const info = await this.deps.store.info(topic);
    e.head = Math.max(e.head, info.head);
    this.pump(e);
    return { position: e.group.position(), epoch: info.epoch, head: info.head, settings: e.group.settings };
  }

  leaveLocal(topic: string, name: string, member: Member): void {
    const e = this.entries.get(key(topic, name));
    if (!e || !e.group.members.includes(member)) return;
    e.group.leave(member);
    e.users--;
    this.pump(e);
  }

  ackLocal(topic: string, name: string, member: Member, offsets: readonly number[]): number[] {
    const e = this.entries.get(key(topic, name));
    const refused: number[] = [];
    for (const o of offsets) {
      try {
        if (!e) throw new NotLeased(o);
        e.group.ack(member, o);
      } catch (err) {
        if (!(err instanceof NotLeased)) throw err;
        refused.push(o);
      }
    }
    if (e) this.pump(e);
    return refused;
  }

  nackLocal(topic: string, name: string, member: Member, offset: number, delayMs?: number, reason?: string): void {
    const e = this.entries.get(key(topic, name));
    if (!e) throw new NotLeased(offset);
    const death = e.group.nack(member, offset, Date.now(), delayMs, reason);
    if (death) this.bury(e, death);
    this.pump(e);
  }

  pokeLocal(topic: string, name: string): void {
    const e = this.entries.get(key(topic, name));
    if (e) this.pump(e);
  }

  /** Stops running a group another node now holds; returns its members (they are relinked). */
  drop(topic: string, name: string): Member[] {
    const e = this.entries.get(key(topic, name));
    if (!e) return [];
    this.entries.delete(key(topic, name));
    this.dirty.delete(e);
    if (e.timer) clearTimeout(e.timer);
    e.following?.drop();
    return [...e.group.members];
  }

  async adminLocal(topic: string, name: string, op: AdminOp): Promise<unknown> {
    if (op.op === 'configure') return void (await this.configureHere(topic, name, op.settings));
    if (op.op === 'reset') return void (await this.resetHere(topic, name, op.to));
    return this.replayHere(topic, name);
  }

  /**
   * The groups known here (loaded) — of one topic, or (no topic) of every topic — with what the
   * admin API and the metrics show: the durable ack floor, and the last offset the topic is known
   * to hold (no store read).
   */
  loaded(topic?: string): { group: Group; savedFloor: number; head: number }[] {
    const out: { group: Group; savedFloor: number; head: number }[] = [];
    for (const e of this.entries.values()) {
      if (topic === undefined || e.group.topic === topic) out.push({ group: e.group, savedFloor: e.savedFloor, head: e.head });
    }
    return out;
  }

  /** Changes a group's settings (admin), saved at once — on the node that runs the group. */
  async configure(topic: string, name: string, settings: Partial<GroupSettings>): Promise<void> {
    if (this.cluster) await this.cluster.admin(topic, name, { op: 'configure', settings });
    else await this.configureHere(topic, name, settings);
  }

  /** Moves a group's position (admin): to an offset, or to the first message stored at or after a time. */
  async reset(topic: string, name: string, to: { offset?: number; at?: number }): Promise<void> {
    if (this.cluster) await this.cluster.admin(topic, name, { op: 'reset', to });
    else await this.resetHere(topic, name, to);
  }

  /**
   * Appends a group's dead letters back to their origin topic (admin replay): each as a new message
   * with its data and original headers; returns how many.
   */
  async replay(topic: string, name: string): Promise<number> {
    if (this.cluster) return (await this.cluster.admin(topic, name, { op: 'replay' })) as number;
    return this.replayHere(topic, name);
  }

  private async configureHere(topic: string, name: string, settings: Partial<GroupSettings>): Promise<Group> {
    const e = await this.entry(topic, name);
    e.group.settings = { ...e.group.settings, ...settings };
    e.group.dirty = true;
    await this.saveNow(e);
    return e.group;
  }

  private async resetHere(topic: string, name: string, to: { offset?: number; at?: number }): Promise<Group> {
    const e = await this.entry(topic, name);
    let offset = to.offset;
    if (offset === undefined) offset = await this.offsetAt(topic, to.at ?? Date.now());
    e.group.reset(Math.max(1, offset));
    await this.saveNow(e);
    this.pump(e);
    return e.group;
  }

  private async replayHere(topic: string, name: string): Promise<number> {
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
    if (this.cluster) {
      // Never two engines for one group: only the lock's holder runs it.
      const owner = await this.cluster.owner(topic, name);
      if (owner !== this.nodeId) throw new Error(`group ${name} of ${topic} runs on node ${owner}`);
    }
    const following = store.follow?.(topic);
    if (following) await following.ready;
    const [saved, info] = await Promise.all([store.loadGroup(topic, name), store.info(topic)]);
    const snapshot = saved ? (decodeValue(saved) as GroupSnapshot) : undefined;
    const start = from === undefined ? info.head + 1 : Math.min(Math.max(from, info.first), info.head + 1);
    const group = new Group(topic, name, start, { ...defaults, deadLetterTopic: `${topic}.dlq` }, snapshot);
    const tracer = this.deps.tracer;
    if (tracer) group.trace = (offset, event) => tracer.record(topic, offset, event);
    const e: Entry = {
      group, following, head: info.head, reading: false, timer: undefined, wakeAt: Infinity, saving: false,
      savedFloor: snapshot ? snapshot.floor : group.floor, users: 0, readAfter: 0,
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
      // A group without members holds nothing in memory: it reads the log when one joins.
      if (!e.reading && e.group.next === first && e.group.members.length > 0) e.group.offer(first, entries);
      this.pump(e);
    }
  }

  /** Dispatches, reads more of the log when the group is behind, expires leases, saves, rearms. */
  private pump(e: Entry): void {
    const g = e.group;
    const now = Date.now();
    for (const death of g.expire(now)) this.bury(e, death);
    const behind = g.next <= e.head && g.room() > 0 && g.members.length > 0 && now >= e.readAfter;
    if (behind && !e.reading) void this.read(e);
    // Priority orders the ready backlog: hand out once the group has read what it may hold.
    if (!behind) g.dispatch(now);
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
      logger.error(`group ${e.group.name} of ${e.group.topic} could not read its topic; trying again in 1 s`, { err });
      e.readAfter = Date.now() + 1000; // meanwhile what was read is handed out
      setTimeout(() => this.pokeLocal(e.group.topic, e.group.name), 1000).unref();
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
        logger.error(`dead-lettering offset ${d.offset} of ${g.topic} (group ${g.name}) failed; it will be tried again`, { err });
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
      if (err instanceof GroupNotOwned) {
        // Another node took the group (this one could not renew in time): it runs it from now on.
        e.saving = false;
        const owner = await this.cluster?.owner(g.topic, g.name).catch(() => '') ?? '';
        this.cluster?.lost(g.topic, g.name, owner);
        return;
      }
      g.dirty = true;
      logger.error(`saving group ${g.name} of ${g.topic} failed; retrying with the next change`, { err });
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
