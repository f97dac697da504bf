/**
 * Consumer groups as the admin API and /metrics show them (admin.ts routes to it): a row per group
 * with its position, backlog, leases, members and settings; the checks of an admin's changes; the
 * redelivery rate, sampled every second; and the groups' Prometheus series.
 *
 * What a row shows is the node answering's: the groups it holds (groups.ts), members on it. A group
 * that has saved state but is not held here is loaded (`Groups.open`) when it is first listed, so
 * an operator sees every group of a topic; it takes no leases until a member joins.
 */
import { topicError, type Admin as Wire } from '@sluice/client/protocol';
import type { Group } from '../groups/group.js';
import type { Groups, GroupSettings } from '../groups/registry.js';
import type { TopicLog } from '../log/log.js';
import type { Nodes } from '../cluster/nodes.js';
import type { Metrics, Series } from '../metrics.js';

type GroupRow = Wire.GroupRow;

/** Longest ack wait or backoff delay an admin may set: one day (Node's timers stop at ~24.8 days). */
export const MAX_DELAY_MS = 86_400_000;
export const MAX_DELIVERIES = 1000;
export const MAX_BACKOFF_STEPS = 20;

/** Messages up to `head` neither done nor leased (the group's lag, in the admin API and the metrics). */
export function readyBacklog(group: Group, head: number): number {
  return Math.max(0, group.backlog(head) - group.leases.size);
}

/**
 * Checks a `PUT` body: an object with only settings, each valid. Returns the settings to change,
 * or why the body is refused. `topic` is the group's own (its dead letters cannot go there).
 */
export function settingsUpdate(topic: string, doc: Record<string, unknown>): Partial<GroupSettings> | string {
  const out: Partial<GroupSettings> = {};
  for (const [k, v] of Object.entries(doc)) {
    switch (k) {
      case 'ackWaitMs':
        if (!isInt(v, 1, MAX_DELAY_MS)) return `ackWaitMs must be an integer number of ms, 1-${MAX_DELAY_MS}`;
        out.ackWaitMs = v;
        break;
      case 'maxDeliveries':
        if (!isInt(v, 1, MAX_DELIVERIES)) return `maxDeliveries must be an integer, 1-${MAX_DELIVERIES}`;
        out.maxDeliveries = v;
        break;
      case 'backoffMs':
        if (!Array.isArray(v) || v.length > MAX_BACKOFF_STEPS || !v.every((d) => isInt(d, 0, MAX_DELAY_MS))) {
          return `backoffMs must be an array of at most ${MAX_BACKOFF_STEPS} integer delays in ms, 0-${MAX_DELAY_MS}`;
        }
        out.backoffMs = v as number[];
        break;
      case 'deadLetterTopic': {
        const bad = topicError(v);
        if (bad) return `deadLetterTopic: ${bad}`;
        if (v === topic) return 'deadLetterTopic must not be the topic itself';
        out.deadLetterTopic = v as string;
        break;
      }
      default:
        return `unknown setting ${JSON.stringify(k.slice(0, 64))} (ackWaitMs, maxDeliveries, backoffMs, deadLetterTopic)`;
    }
  }
  return out;
}

/** Checks a reset body: exactly one of `offset` (1 to head + 1) and `at` (ms since the epoch). */
export function resetTarget(doc: Record<string, unknown>, head: number): { offset: number } | { at: number } | string {
  const keys = Object.keys(doc);
  if (keys.length !== 1 || (keys[0] !== 'offset' && keys[0] !== 'at')) return 'the body must be {"offset": n} or {"at": ms since the epoch}';
  if ('offset' in doc) {
    if (!isInt(doc.offset, 1, head + 1)) return `offset must be an integer, 1-${head + 1} (the topic's head is ${head})`;
    return { offset: doc.offset };
  }
  if (!isInt(doc.at, 0, Number.MAX_SAFE_INTEGER)) return 'at must be a time in ms since the epoch';
  return { at: doc.at };
}

function isInt(v: unknown, min: number, max: number): v is number {
  return Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
}

/** Redeliveries per second per group held here, from its counter, sampled every second. */
class RedeliveryRates {
  private seen = new Map<Group, { total: number; rate: number }>();
  private sampledAt = Date.now();
  private readonly sampler: ReturnType<typeof setInterval>;

  constructor(private readonly groups: Groups) {
    this.sampler = setInterval(() => this.sample(), 1000);
    this.sampler.unref();
  }

  rate(g: Group): number {
    return this.seen.get(g)?.rate ?? 0;
  }

  close(): void {
    clearInterval(this.sampler);
  }

  private sample(): void {
    const now = Date.now();
    const dt = (now - this.sampledAt) / 1000;
    if (dt <= 0) return;
    this.sampledAt = now;
    // Rebuilt each time: a group no longer held here is forgotten.
    const next = new Map<Group, { total: number; rate: number }>();
    for (const { group } of this.groups.loaded()) {
      const total = group.counts.redelivered;
      const before = this.seen.get(group);
      next.set(group, { total, rate: before ? Math.round(((total - before.total) / dt) * 100) / 100 : 0 });
    }
    this.seen = next;
  }
}

export class AdminGroups {
  private readonly rates: RedeliveryRates;

  constructor(private readonly groups: Groups, private readonly store: TopicLog, metrics: Metrics, private readonly nodes: Nodes) {
    // Cluster mode: a group's row comes from the node that runs it.
    nodes.handle('groups.row', (p) => {
      const { topic, group } = p as { topic: string; group: string };
      return this.localRow(topic, group);
    });
    this.rates = new RedeliveryRates(groups);
    const series = (value: (g: Group, head: number) => number) => (): Series[] =>
      groups.loaded().map(({ group, head }) => ({ labels: { topic: group.topic, group: group.name }, value: value(group, head) }));
    metrics.collect('sluice_group_backlog', 'gauge', 'Consumer group messages neither done nor leased (lag), by topic and group.',
      series((g, head) => readyBacklog(g, head)));
    metrics.collect('sluice_group_leased', 'gauge', 'Consumer group leases out now, by topic and group.', series((g) => g.leases.size));
    metrics.collect('sluice_group_redelivered_total', 'counter', 'Consumer group redeliveries (attempt 2 and later), by topic and group.',
      series((g) => g.counts.redelivered));
    metrics.collect('sluice_group_dead_lettered_total', 'counter', 'Consumer group messages dead-lettered, by topic and group.',
      series((g) => g.counts.deadLettered));
  }

  close(): void {
    this.rates.close();
  }

  /** The names of a topic's groups, sorted: saved in the store, or held here and not saved yet. Loads nothing. */
  async names(topic: string): Promise<string[]> {
    const names = new Set(await this.store.groupsOf(topic));
    for (const { group } of this.groups.loaded(topic)) names.add(group.name);
    return [...names].sort();
  }

  /** Whether the group exists: saved, or held here. */
  async exists(topic: string, name: string): Promise<boolean> {
    return this.groups.loaded(topic).some((l) => l.group.name === name) || (await this.store.groupsOf(topic)).includes(name);
  }

  /**
   * A row per group of the topic, by name, each from the node that runs the group (groups saved but
   * run nowhere are loaded here first).
   */
  async rows(topic: string): Promise<GroupRow[]> {
    const names = await this.names(topic);
    return Promise.all(names.map((n) => this.rowOf(topic, n)));
  }

  /** One group's row, from the node that runs it (this one, loading it when nobody runs it). */
  async rowOf(topic: string, name: string): Promise<GroupRow> {
    const owner = await this.groups.ownerOf(topic, name);
    if (owner !== this.groups.nodeId) return this.nodes.ask<GroupRow>(owner, 'groups.row', { topic, group: name });
    return this.localRow(topic, name);
  }

  private async localRow(topic: string, name: string): Promise<GroupRow> {
    await this.groups.open(topic, name);
    const info = await this.store.info(topic);
    const l = this.groups.loaded(topic).find((x) => x.group.name === name);
    if (!l) throw new Error(`group ${name} of ${topic} is not loaded`); // open() just loaded it
    return this.row(l, info.head);
  }

  private row(l: { group: Group; savedFloor: number; head: number }, storeHead: number): GroupRow {
    const g = l.group;
    const head = Math.max(storeHead, l.head);
    return {
      group: g.name,
      floor: l.savedFloor,
      next: g.next,
      head,
      backlog: readyBacklog(g, head),
      leased: g.leases.size,
      redeliveriesPerSec: this.rates.rate(g),
      deadLettered: g.counts.deadLettered,
      acked: g.counts.acked,
      members: g.members.map((m) => ({ id: m.id, clientId: m.clientId, transport: m.transport ?? 'http', window: m.window, leased: m.leased })),
      settings: { ...g.settings, backoffMs: [...g.settings.backoffMs] },
    };
  }
}
