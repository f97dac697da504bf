/**
 * Assembles a gateway from a Config: store, authenticator, hub, uWS app; and takes it down again.
 * `startServer` is what the CLI runs and what in-process tests use.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { CloseCode } from '@sluice/client/protocol';
import { App, SSLApp, us_listen_socket_close, us_socket_local_port, type us_listen_socket } from 'uWebSockets.js';
import { DevAuthenticator, type Authenticator } from './auth/auth.js';
import { jwtFromConfig } from './auth/jwt.js';
import { SoloNode, type Nodes, type SelfInfo } from './cluster/nodes.js';
import { ConfigError, type Config, type TlsConfig } from './config.js';
import { mountBasics, mountNotFound } from './gateway/http.js';
import { mountWebSocket } from './gateway/ws.js';
import { HttpApi } from './http/api.js';
import { mountConsole } from './http/console.js';
import { mountOpenApi } from './http/openapi.js';
import { OriginPolicy } from './http/origins.js';
import { PeerResolver } from './http/peer.js';
import { recordRoutes, type RegisteredRoute } from './http/routes.js';
import { PublishService } from './core/publish.js';
import { HeldService } from './core/held.js';
import { CursorReader } from './core/start.js';
import { Groups } from './groups/registry.js';
import { Tracer } from './core/trace.js';
import { Hub } from './hub/hub.js';
import { BackupService } from './log/backup.js';
import { DiskLog } from './log/disk.js';
import type { TopicLog } from './log/log.js';
import { MemoryLog } from './log/memory.js';
import type { RedisLog } from './log/redis.js';
import { Metrics } from './metrics.js';
import { RateLimiter } from './ratelimit.js';
import type { Session } from './session/session.js';
import { randomId } from './util/id.js';

export const VERSION: string = (JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string }).version;

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly store: TopicLog;
  readonly hub: Hub;
  readonly publisher: PublishService;
  /** Delayed and prepared messages, and their scheduler. */
  readonly held: HeldService;
  readonly groups: Groups;
  readonly rates: RateLimiter;
  readonly metrics: Metrics;
  readonly sessions: ReadonlySet<Session>;
  readonly auth: Authenticator;
  readonly origins: OriginPolicy;
  readonly http: HttpApi;
  /** This node and, in cluster mode, the others (the admin API's view of the cluster). */
  readonly nodes: Nodes;
  /** Directory of the console build served at /console, if any. */
  readonly consoleDir: string | undefined;
  /** Every route registered on the uWS app (docs/openapi.json documents them). */
  readonly routes: readonly RegisteredRoute[];
  /** Stops accepting, closes every connection (1001), waits for pending appends, closes the store. */
  close(): Promise<void>;
}

export async function openStore(config: Config, metrics?: Metrics): Promise<TopicLog> {
  const options = { retention: config.retention, dedupWindowMs: config.dedupWindowMs };
  if (config.store === 'memory') return new MemoryLog(options);
  if (config.store === 'redis') {
    // Loaded only here: ioredis is a third of the gateway's start-up (76 of ~190 ms of imports).
    const { RedisLog } = await import('./log/redis.js');
    return RedisLog.open({ ...options, url: config.redis.url, minReplicas: config.redis.minReplicas, commandTimeoutMs: config.redis.commandTimeoutMs });
  }
  const onSync = metrics ? (s: number) => metrics.syncSeconds.observe(s) : undefined;
  return DiskLog.open({ ...options, dir: config.dataDir, durability: config.durability, minFreeBytes: config.minFree, ...(onSync ? { onSync } : {}) });
}

/** The authenticator a configuration asks for: JWT when a secret or public key is set, else dev mode. */
export function authFromConfig(config: Config): Authenticator {
  return jwtFromConfig(config.auth) ?? new DevAuthenticator();
}

/**
 * The TLS files, checked before uWS gets them (it fails without saying why): each readable, the
 * key the certificate's. Returns absolute paths.
 */
function readableTls(tls: TlsConfig): TlsConfig {
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`cannot read the TLS ${what} ${path}: ${(err as Error).message}`);
    }
  };
  const cert = read('certificate (--tls-cert)', tls.cert);
  const key = read('key (--tls-key)', tls.key);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError(`--tls-cert and --tls-key do not make a usable pair: ${(err as Error).message}`);
  }
  return { cert: resolve(tls.cert), key: resolve(tls.key) };
}

export async function startServer(config: Config, deps: { auth?: Authenticator } = {}): Promise<RunningServer> {
  const auth = deps.auth ?? authFromConfig(config); // before anything opens: a bad key fails fast
  const origins = OriginPolicy.from(config.allowedOrigins, auth.mode === 'dev', config.publicUrl);
  const peers = new PeerResolver(config.trustProxy, config.tls !== undefined);
  const rates = new RateLimiter(config.rates);
  const metrics = new Metrics(VERSION);
  const basics = { origins, metrics, peers, accessLog: config.log.access };
  const tls = config.tls ? readableTls(config.tls) : undefined; // before the store opens: a bad path fails fast
  if (config.backupDir !== undefined) {
    try {
      mkdirSync(config.backupDir, { recursive: true }); // before the store opens: a bad path fails fast
    } catch (err) {
      throw new ConfigError(`cannot create the backup directory (--backup-dir) ${config.backupDir}: ${(err as Error).message}`);
    }
  }
  const store = await openStore(config, metrics);
  const app = tls ? SSLApp({ cert_file_name: tls.cert, key_file_name: tls.key }) : App();
  const routes = recordRoutes(app);
  const reader = new CursorReader(store, config.read);
  const redis = store.kind === 'redis' ? store as RedisLog : undefined;
  const nodeId = redis ? redis.nodeId : randomId(12);
  const tracer = new Tracer({ node: nodeId, ...config.trace });
  const unwatchCommits = tracer.watch(store); // first: a commit is seen before any delivery of it
  const hub = new Hub(store, reader, { publish: (topic, frame) => app.publish(topic, frame, true) }, metrics, {
    ...config.hub,
    maxCredit: config.limits.maxCredit,
    // The cache holds only what retention keeps, so it never serves a message the log trimmed.
    cacheEntries: Math.min(config.hub.cacheEntries, config.retention.maxCount),
    cacheBytes: Math.min(config.hub.cacheBytes, config.retention.maxBytes),
  }, tracer);
  // In cluster mode a client's publish rate is counted across every gateway.
  if (redis) rates.share((client, n, rate, capacity) => redis.takeRate(client, n, rate, capacity));
  const publisher = new PublishService({ store, metrics, rates, maxPayload: config.limits.maxFrame, draining: () => draining, tracer });
  const groups = new Groups({ store, reader, metrics, defaults: config.groups, tracer });
  const held = new HeldService({ store, publisher, metrics, options: config.held, keepMs: config.dedupWindowMs, tracer });
  const sessions = new Set<Session>();
  let draining = false;
  const self: SelfInfo = {
    id: nodeId,
    version: VERSION,
    startedAt: Date.now(),
    figures: () => {
      const c = hub.stateCounts();
      return { connections: sessions.size, subscriptions: c.live + c.paused + c.catchup + c.opening };
    },
  };
  let nodes: Nodes;
  try {
    nodes = redis
      ? await (await import('./cluster/redis-nodes.js')).RedisNodes.open({ target: redis.target, commandTimeoutMs: config.redis.commandTimeoutMs, self })
      : new SoloNode(self);
  } catch (err) {
    hub.close();
    await store.close();
    throw err;
  }
  groups.attach(nodes);

  metrics.gauge('sluice_open_connections', 'Open WebSocket connections.', () => sessions.size);
  metrics.gauge('sluice_subscriptions', 'Subscriptions by state (paused = no credit).', () => {
    const c = hub.stateCounts();
    return { live: c.live, catchup: c.catchup, paused: c.paused, opening: c.opening };
  }, 'state');
  metrics.gauge('sluice_send_buffered_bytes', 'Bytes written to WebSockets and not yet taken by the kernel, all connections.', () => {
    let n = 0;
    for (const s of sessions) n += s.conn.bufferedAmount();
    return n;
  });
  // On Redis every node reports the whole shared store, read again every second (HeldService).
  metrics.gauge('sluice_held_messages', 'Delayed and prepared messages the store holds, by state (final ones are kept for the dedup window).', () => store.held.counts(), 'state');
  metrics.gauge('sluice_store_bytes', 'Bytes the store occupies.', () => store.size());
  metrics.gauge('sluice_store_writable', 'Whether the store takes writes (0: disk full or failed; publishes are refused).', () => (store.health().writable ? 1 : 0));

  mountWebSocket(app, {
    ctx: { hub, groups, publisher, held, auth, limits: config.limits, metrics, version: VERSION, rates },
    sessions,
    http: basics,
  });
  const backups = config.backupDir !== undefined && store instanceof DiskLog ? new BackupService(store, config.backupDir) : undefined;
  const http = new HttpApi(app, {
    store, groups, publisher, held, reader, hub, auth, metrics, limits: config.limits, http: config.http, origins, peers, accessLog: config.log.access, rates, sessions, version: VERSION, nodes, tracer, backups,
  });
  const consoleDir = mountConsole(app, basics, config.consoleDir);
  mountOpenApi(app, basics);
  mountBasics(app, basics, () => !draining, () => {
    if (draining) return 'draining';
    const h = store.health();
    return h.writable ? undefined : `store not writable: ${h.reason ?? h.code ?? 'unknown'}`;
  });
  mountNotFound(app, basics);

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (s) => (s ? resolve(s) : reject(new Error(`cannot listen on ${config.host}:${config.port}`))));
  });
  const port = us_socket_local_port(listenSocket);
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}`;
  await nodes.announce(config.publicUrl ?? url);
  held.start();

  return {
    url,
    port,
    store,
    hub,
    publisher,
    held,
    groups,
    rates,
    metrics,
    sessions,
    auth,
    origins,
    http,
    nodes,
    consoleDir,
    routes,
    async close() {
      if (draining) return;
      draining = true;
      us_listen_socket_close(listenSocket);
      for (const s of [...sessions]) s.disconnect(CloseCode.GOING_AWAY, 'gateway shutting down');
      // Let the close frames go out and the handshakes finish (bounded): closing the app at once
      // would cut them, and clients would see 1006 instead of 1001.
      const until = Date.now() + 2000;
      do await new Promise((r) => setTimeout(r, 20)); while (sessions.size > 0 && Date.now() < until);
      // One more turn of the event loop's poll phase: on a busy machine the timer above can fire
      // before the sockets were read, and requests already received (an HTTP publish arriving
      // during the drain) would be cut by a reset instead of answered 503 shutting-down.
      await new Promise((r) => setImmediate(r));
      await held.close();
      http.close();
      hub.close();
      unwatchCommits();
      await groups.close();
      await nodes.close();
      await backups?.close(); // a copy in progress reads the store: it ends first
      await store.close();
      metrics.stop();
      app.close();
    },
  };
}
