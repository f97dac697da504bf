/**
 * Consumer groups across gateway nodes (cluster mode): members connected to different nodes share
 * one group. One node runs the group's engine (group.ts) — its **owner**, the holder of the group's
 * lock in Redis (`claimGroup`, renewed every second, lost 3 s after the owner stops renewing). Every
 * other node with members of that group keeps a **link** to the owner and relays for its members:
 *
 *   member's node                               owner
 *   join / leave / window (credit, blocked) ──► a ProxyMember in the group
 *   ack / nack                              ──► the group's ack / nack (refusals come back)
 *   deliver to the local member            ◄── leases for the proxy, batched per node per turn
 *
 * over the nodes' request channel (cluster/redis-nodes.ts). Only the owner reads the log for the
 * group and saves its state, and a save is refused by Redis unless the saver holds the lock, so a
 * node that lost a group can never overwrite the new owner's state.
 *
 * Ownership moves when the owner dies or loses Redis: within a second of the lock's expiry a node
 * with members claims the group, loads its saved state and serves its members and the others'
 * links. Leases of the old owner are void then: every message not acknowledged in the saved state
 * is delivered again (at-least-once, as after a restart); an acknowledgement of such a lease is
 * answered `not-leased`. A node that finds it lost a group (renewal or save refused) drops it and
 * relinks its own members to the new owner.
 *
 * Everything here runs only when the store implements `claimGroup` (Redis); otherwise the gateway
 * is the owner of every group and none of this is used.
 */
import { NodeUnanswered, type Nodes } from '../cluster/nodes.js';
import type { GroupSettings, Member } from './group.js';
import { NotLeased } from './group.js';
import { logger } from '../logger.js';

/** How long a group's lock lives without renewal (ms). */
export const OWNER_TTL_MS = 3000;
/** How often owners renew and links check their owner (ms). */
export const CHECK_MS = 1000;
/** How long a relayed request may take (ms). */
const ASK_MS = 2000;
/** How long a join keeps looking for a reachable owner (ms): past one lock expiry. */
const JOIN_PATIENCE_MS = OWNER_TTL_MS + 2 * CHECK_MS;

/** What a joining member learns from the group's owner. */
export interface Joined {
  /** The next offset the group reads (SUBSCRIBED's `from`). */
  position: number;
  epoch: string;
  head: number;
  settings: GroupSettings;
}

/** What the owner side needs from the registry (registry.ts implements it). */
export interface GroupHost {
  /** This node's id. */
  readonly nodeId: string;
  /** Whether this node runs the group's engine now. */
  owns(topic: string, name: string): boolean;
  joinLocal(topic: string, name: string, member: Member, from?: number): Promise<Joined>;
  leaveLocal(topic: string, name: string, member: Member): void;
  ackLocal(topic: string, name: string, member: Member, offsets: readonly number[]): number[];
  /** Throws NotLeased. */
  nackLocal(topic: string, name: string, member: Member, offset: number, delayMs?: number, reason?: string): void;
  pokeLocal(topic: string, name: string): void;
  /** The local members of a group this node owned and lost (they are relinked). */
  drop(topic: string, name: string): Member[];
  /** An admin operation on a group this node owns. */
  adminLocal(topic: string, name: string, op: AdminOp): Promise<unknown>;
}

export type AdminOp =
  | { op: 'configure'; settings: Partial<GroupSettings> }
  | { op: 'reset'; to: { offset?: number; at?: number } }
  | { op: 'replay' };

/** Another node's member, as the owner's group sees it. */
class ProxyMember implements Member {
  leased = 0;
  window = 0;
  blockedNow = false;
  constructor(
    readonly id: string,
    readonly clientId: string,
    readonly transport: 'ws' | 'http' | undefined,
    readonly node: string,
    readonly topic: string,
    readonly group: string,
    private readonly out: Relay,
  ) {}

  deliver(offset: number, attempt: number, entry: Uint8Array): void {
    this.out.lease(this, offset, attempt, entry);
  }

  blocked(): boolean {
    return this.blockedNow;
  }
}

/** A node's members of a group another node owns. */
interface Link {
  topic: string;
  name: string;
  owner: string;
  members: Map<string, Member>;
}

type Lease = [id: string, offset: number, attempt: number, entry: string, leased: number];

interface WireMember { id: string; clientId: string; transport?: 'ws' | 'http'; window: number }

const linkKey = (topic: string, name: string) => `${topic}\0${name}`;

/** Owner lookups, claims and renewals against the store's locks. */
export interface Locks {
  claimGroup(topic: string, group: string, ttlMs: number): Promise<string>;
  releaseGroup?(topic: string, group: string): Promise<void>;
}

/** Leases for members of other nodes, sent once per loop turn per node. */
class Relay {
  private readonly queued = new Map<string, { topic: string; name: string; leases: Lease[]; proxies: Map<string, ProxyMember> }[]>();
  private scheduled = false;

  constructor(private readonly nodes: Nodes, private readonly onGone: (p: ProxyMember) => void) {}

  lease(p: ProxyMember, offset: number, attempt: number, entry: Uint8Array): void {
    let batches = this.queued.get(p.node);
    if (!batches) this.queued.set(p.node, (batches = []));
    let b = batches.find((x) => x.topic === p.topic && x.name === p.group);
    if (!b) batches.push((b = { topic: p.topic, name: p.group, leases: [], proxies: new Map() }));
    b.leases.push([p.id, offset, attempt, Buffer.from(entry.buffer, entry.byteOffset, entry.byteLength).toString('base64'), p.leased]);
    b.proxies.set(p.id, p);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    for (const [node, batches] of this.queued) {
      for (const b of batches) {
        this.nodes.ask<{ gone: string[]; blocked: string[] }>(node, 'groups.deliver', { t: b.topic, g: b.name, leases: b.leases }, ASK_MS).then(
          ({ gone, blocked }) => {
            for (const id of blocked) { const p = b.proxies.get(id); if (p) p.blockedNow = true; }
            for (const id of gone) { const p = b.proxies.get(id); if (p) this.onGone(p); }
          },
          // Not delivered: the leases expire and go to another member (or to this one again).
          (err: unknown) => logger.error(`group ${b.name} of ${b.topic}: leases for node ${node} not delivered: ${(err as Error).message}`),
        );
      }
    }
    this.queued.clear();
  }
}

export class GroupCluster {
  private readonly links = new Map<string, Link>();
  /** On the owner: proxies by group, then member id. */
  private readonly proxies = new Map<string, Map<string, ProxyMember>>();
  private readonly relay: Relay;
  private readonly timer: ReturnType<typeof setInterval>;
  private checking = false;

  constructor(
    private readonly host: GroupHost,
    private readonly locks: Locks,
    private readonly nodes: Nodes,
    /** Groups this node owns now (to renew). */
    private readonly owned: () => { topic: string; name: string }[],
  ) {
    this.relay = new Relay(nodes, (p) => this.dropProxy(p));
    this.handlers();
    this.timer = setInterval(() => void this.check(), CHECK_MS);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    for (const link of this.links.values()) {
      for (const m of link.members.values()) void this.tell(link, 'groups.leave', { id: m.id });
    }
    this.links.clear();
  }

  /** Who runs the group: this node (it just claimed it, or held it), or another node's id. */
  async owner(topic: string, name: string): Promise<string> {
    return this.locks.claimGroup(topic, name, OWNER_TTL_MS);
  }

  /** Whether `member` is relayed to another node's group. */
  relays(topic: string, name: string, member: Member): boolean {
    return this.links.get(linkKey(topic, name))?.members.get(member.id) === member;
  }

  /**
   * Joins `member` to the group at its owner, waiting for an owner that answers (a dead owner's
   * lock expires; then this node or another takes the group). Joins locally when this node becomes
   * the owner meanwhile.
   */
  async join(topic: string, name: string, member: Member, owner: string, from?: number): Promise<Joined> {
    const deadline = Date.now() + JOIN_PATIENCE_MS;
    for (;;) {
      if (owner === this.host.nodeId) return this.host.joinLocal(topic, name, member, from);
      const link = this.link(topic, name, owner);
      link.members.set(member.id, member);
      try {
        return await this.nodes.ask<Joined>(owner, 'groups.join', { t: topic, g: name, node: this.host.nodeId, from, m: wire(member) }, ASK_MS);
      } catch (err) {
        link.members.delete(member.id);
        this.forgetIfEmpty(link);
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, CHECK_MS / 4));
        owner = await this.owner(topic, name);
      }
    }
  }

  leave(topic: string, name: string, member: Member): void {
    const link = this.links.get(linkKey(topic, name));
    if (!link || link.members.get(member.id) !== member) return;
    link.members.delete(member.id);
    void this.tell(link, 'groups.leave', { id: member.id });
    this.forgetIfEmpty(link);
  }

  async ack(topic: string, name: string, member: Member, offsets: readonly number[]): Promise<number[]> {
    const link = this.links.get(linkKey(topic, name))!;
    try {
      const r = await this.nodes.ask<{ refused: number[]; leased: number }>(link.owner, 'groups.ack', { t: topic, g: name, id: member.id, offsets }, ASK_MS);
      member.leased = r.leased;
      return r.refused;
    } catch (err) {
      if (!(err instanceof NodeUnanswered)) throw err;
      // The owner is gone: its leases are void; the next owner delivers these again.
      return [...offsets];
    }
  }

  async nack(topic: string, name: string, member: Member, offset: number, delayMs?: number, reason?: string): Promise<void> {
    const link = this.links.get(linkKey(topic, name))!;
    let r: { refused: boolean; leased: number };
    try {
      r = await this.nodes.ask(link.owner, 'groups.nack', { t: topic, g: name, id: member.id, offset, delay: delayMs, reason }, ASK_MS);
    } catch (err) {
      if (!(err instanceof NodeUnanswered)) throw err;
      throw new NotLeased(offset);
    }
    member.leased = r.leased;
    if (r.refused) throw new NotLeased(offset);
  }

  /** A member's window or blocked state changed: tell the owner. */
  poke(topic: string, name: string): void {
    const link = this.links.get(linkKey(topic, name));
    if (!link) return;
    const members = [...link.members.values()].map((m) => ({ id: m.id, window: m.window, blocked: m.blocked?.() ?? false }));
    void this.tell(link, 'groups.window', { members });
  }

  /** An admin operation, run by the group's owner. */
  async admin(topic: string, name: string, op: AdminOp): Promise<unknown> {
    const owner = await this.owner(topic, name);
    if (owner === this.host.nodeId) return this.host.adminLocal(topic, name, op);
    return this.nodes.ask(owner, 'groups.admin', { t: topic, g: name, op }, ASK_MS);
  }

  // ---- the owner's side ------------------------------------------------------------------------

  private handlers(): void {
    const { nodes, host } = this;
    const owned = (p: { t: string; g: string }) => {
      if (!host.owns(p.t, p.g)) throw new Error('not-owner');
    };
    nodes.handle('groups.join', async (params) => {
      const p = params as { t: string; g: string; node: string; from?: number; m: WireMember };
      const owner = await this.owner(p.t, p.g);
      if (owner !== host.nodeId) throw new Error('not-owner');
      let byId = this.proxies.get(linkKey(p.t, p.g));
      if (!byId) this.proxies.set(linkKey(p.t, p.g), (byId = new Map()));
      const old = byId.get(p.m.id);
      if (old) host.leaveLocal(p.t, p.g, old);
      const proxy = new ProxyMember(p.m.id, p.m.clientId, p.m.transport, p.node, p.t, p.g, this.relay);
      byId.set(p.m.id, proxy);
      const joined = await host.joinLocal(p.t, p.g, proxy, p.from);
      proxy.window = p.m.window;
      host.pokeLocal(p.t, p.g);
      return joined;
    });
    nodes.handle('groups.leave', (params) => {
      const p = params as { t: string; g: string; id: string };
      const proxy = this.proxies.get(linkKey(p.t, p.g))?.get(p.id);
      if (proxy) this.dropProxy(proxy);
      return {};
    });
    nodes.handle('groups.ack', (params) => {
      const p = params as { t: string; g: string; id: string; offsets: number[] };
      owned(p);
      const proxy = this.proxies.get(linkKey(p.t, p.g))?.get(p.id);
      if (!proxy) return { refused: p.offsets, leased: 0 };
      return { refused: host.ackLocal(p.t, p.g, proxy, p.offsets), leased: proxy.leased };
    });
    nodes.handle('groups.nack', (params) => {
      const p = params as { t: string; g: string; id: string; offset: number; delay?: number; reason?: string };
      owned(p);
      const proxy = this.proxies.get(linkKey(p.t, p.g))?.get(p.id);
      if (!proxy) return { refused: true, leased: 0 };
      try {
        host.nackLocal(p.t, p.g, proxy, p.offset, p.delay, p.reason);
        return { refused: false, leased: proxy.leased };
      } catch (err) {
        if (err instanceof NotLeased) return { refused: true, leased: proxy.leased };
        throw err;
      }
    });
    nodes.handle('groups.window', (params) => {
      const p = params as { t: string; g: string; members: { id: string; window: number; blocked: boolean }[] };
      const byId = this.proxies.get(linkKey(p.t, p.g));
      for (const m of p.members) {
        const proxy = byId?.get(m.id);
        if (!proxy) continue;
        proxy.window = m.window;
        proxy.blockedNow = m.blocked;
      }
      if (host.owns(p.t, p.g)) host.pokeLocal(p.t, p.g);
      return {};
    });
    nodes.handle('groups.admin', (params) => {
      const p = params as { t: string; g: string; op: AdminOp };
      owned(p);
      return host.adminLocal(p.t, p.g, p.op);
    });
    // The member's side: leases from the owner.
    nodes.handle('groups.deliver', (params) => {
      const p = params as { t: string; g: string; leases: Lease[] };
      const link = this.links.get(linkKey(p.t, p.g));
      const gone = new Set<string>();
      const blocked = new Set<string>();
      for (const [id, offset, attempt, entry, leased] of p.leases) {
        const m = link?.members.get(id);
        if (!m) { gone.add(id); continue; }
        m.leased = leased;
        m.deliver(offset, attempt, new Uint8Array(Buffer.from(entry, 'base64')));
        if (m.blocked?.()) blocked.add(id);
      }
      return { gone: [...gone], blocked: [...blocked] };
    });
  }

  private dropProxy(p: ProxyMember): void {
    const byId = this.proxies.get(linkKey(p.topic, p.group));
    if (byId?.get(p.id) !== p) return;
    byId.delete(p.id);
    if (byId.size === 0) this.proxies.delete(linkKey(p.topic, p.group));
    if (this.host.owns(p.topic, p.group)) this.host.leaveLocal(p.topic, p.group, p);
  }

  // ---- every second ----------------------------------------------------------------------------

  /** Owners renew; links follow their group's owner (or take the group when it is free). */
  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const { topic, name } of this.owned()) {
        const owner = await this.owner(topic, name).catch(() => this.host.nodeId);
        if (owner !== this.host.nodeId) this.lost(topic, name, owner);
      }
      for (const link of [...this.links.values()]) {
        const owner = await this.owner(link.topic, link.name).catch(() => link.owner);
        if (owner !== link.owner) await this.relink(link, owner);
      }
      // Members of nodes that are gone leave (their leases expire and go to others).
      const live = new Set((await this.nodes.list()).map((n) => n.id));
      for (const byId of this.proxies.values()) for (const p of [...byId.values()]) if (!live.has(p.node)) this.dropProxy(p);
    } catch (err) {
      logger.error(`consumer groups: checking owners failed: ${(err as Error).message}`);
    } finally {
      this.checking = false;
    }
  }

  /** This node lost a group it ran (found by a renewal or a refused save): relink its members. */
  lost(topic: string, name: string, owner: string): void {
    const mine = this.host.drop(topic, name).filter((m) => !(m instanceof ProxyMember));
    this.proxies.delete(linkKey(topic, name)); // their nodes relink to the new owner by themselves
    if (mine.length === 0) return;
    logger.warn(`group ${name} of ${topic} is now run by node ${owner}; its members here follow`);
    for (const m of mine) {
      m.leased = 0;
      void this.join(topic, name, m, owner).then(() => this.poke(topic, name), (err: unknown) => {
        logger.error(`group ${name} of ${topic}: a member could not rejoin: ${(err as Error).message}`);
      });
    }
  }

  /** The group's owner changed (or the lock is free and this node took it): the members follow. */
  private async relink(link: Link, owner: string): Promise<void> {
    const k = linkKey(link.topic, link.name);
    if (this.links.get(k) === link) this.links.delete(k);
    for (const m of link.members.values()) {
      m.leased = 0;
      try {
        await this.join(link.topic, link.name, m, owner);
      } catch (err) {
        logger.error(`group ${link.name} of ${link.topic}: a member could not rejoin: ${(err as Error).message}`);
      }
    }
    if (owner === this.host.nodeId) this.host.pokeLocal(link.topic, link.name);
    else this.poke(link.topic, link.name);
  }

  private link(topic: string, name: string, owner: string): Link {
    const k = linkKey(topic, name);
    const found = this.links.get(k);
    if (found?.owner === owner) return found;
    const link: Link = { topic, name, owner, members: new Map() };
    this.links.set(k, link);
    if (found) void this.relink(found, owner); // members still at an owner that is no longer it
    return link;
  }

  private forgetIfEmpty(link: Link): void {
    const k = linkKey(link.topic, link.name);
    if (link.members.size === 0 && this.links.get(k) === link) this.links.delete(k);
  }

  private async tell(link: Link, method: string, params: Record<string, unknown>): Promise<void> {
    try {
      await this.nodes.ask(link.owner, method, { t: link.topic, g: link.name, ...params }, ASK_MS);
    } catch {
      // The owner is gone or changed: the next check relinks.
    }
  }
}

function wire(m: Member): WireMember {
  return { id: m.id, clientId: m.clientId, ...(m.transport ? { transport: m.transport } : {}), window: m.window };
}
