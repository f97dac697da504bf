/**
 * Resume positions: where each topic's subscription should continue after a reconnect or a page
 * reload. A position is the last offset the application consumed plus the log's epoch.
 */

export interface Position {
  offset: number;
  epoch: string;
}

/** Where positions are kept. `get` may be async (IndexedDB, a server); `set` is fire-and-forget. */
export interface ResumeStore {
  get(topic: string): Position | undefined | Promise<Position | undefined>;
  set(topic: string, position: Position): void;
  delete(topic: string): void;
}

/** Positions in memory: they survive reconnects, not reloads. The default. */
export function memoryResume(): ResumeStore {
  const map = new Map<string, Position>();
  return {
    get: (topic) => map.get(topic),
    set: (topic, p) => { map.set(topic, p); },
    delete: (topic) => { map.delete(topic); },
  };
}

/** The subset of the Web Storage API used (localStorage and sessionStorage have it). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Positions in Web Storage, so a page reload resumes each topic after the last message the page
 * handled: `webStorageResume(localStorage)` or `webStorageResume(sessionStorage)` (one per tab).
 * `namespace` separates apps or gateways sharing an origin.
 */
export function webStorageResume(storage: StorageLike, namespace = 'sluice'): ResumeStore {
  const key = (topic: string) => `${namespace}:pos:${topic}`;
  return {
    get(topic) {
      try {
        const raw = storage.getItem(key(topic));
        if (!raw) return undefined;
        const p = JSON.parse(raw) as Partial<Position>;
        return typeof p.offset === 'number' && typeof p.epoch === 'string' ? { offset: p.offset, epoch: p.epoch } : undefined;
      } catch {
        return undefined; // unreadable storage (privacy mode, corrupt value): start as if new
      }
    },
    set(topic, p) {
      try { storage.setItem(key(topic), JSON.stringify(p)); } catch { /* quota or privacy mode */ }
    },
    delete(topic) {
      try { storage.removeItem(key(topic)); } catch { /* ignore */ }
    },
  };
}
