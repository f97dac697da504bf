/**
 * Gateways for tests: in-process (`startGateway`) when a test needs the server's internals or
 * speed, and a real child process (`spawnGateway`, from src/testing.ts) when it must be killed
 * or restarted. Both listen on 127.0.0.1 with a free port.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { defaultConfig, type Config } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { CLI_PATH, spawnGateway as spawnProcess, type GatewayProcess } from '../../src/testing.js';
import { RawClient } from './raw-client.js';

export const CLI = CLI_PATH;

export function tempDir(prefix = 'sluice-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export async function startGateway(edit: (c: Config) => void = () => {}): Promise<RunningServer> {
  const c = defaultConfig();
  c.port = 0;
  c.store = 'memory';
  c.quiet = true;
  edit(c);
  return startServer(c);
}

/** `sluice serve <args>` as a child process (tests pass CLI flags directly). */
export function spawnGateway(args: string[], env: Record<string, string> = {}): Promise<GatewayProcess> {
  return spawnProcess({ args, env });
}

/**
 * One in-process gateway for a whole test file, with a connected WebSocket publisher. Its fields
 * are set by the file's `before` hook; `publish` resolves once every value is acknowledged.
 */
export interface PublishingGateway {
  gw: RunningServer;
  pub: RawClient;
  /** A fresh request id for frames sent with `pub` directly. */
  nextReq(): number;
  publish(topic: string, ...values: unknown[]): Promise<void>;
}

export function publishingGateway(edit?: (c: Config) => void): PublishingGateway {
  let req = 0;
  const fx = {
    nextReq: () => ++req,
    async publish(topic: string, ...values: unknown[]): Promise<void> {
      await Promise.all(values.map((v) => fx.pub.publish(++req, topic, v)));
    },
  } as PublishingGateway;
  before(async () => {
    fx.gw = await startGateway(edit);
    fx.pub = await RawClient.connect(fx.gw.url);
  });
  after(async () => {
    fx.pub.close();
    await fx.gw.close();
  });
  return fx;
}
