/**
 * The authorization seam. Every HELLO is authenticated and every SUB, PUB and history read is
 * checked against the principal's capabilities. Dev mode (no secret configured) allows everything
 * and says so loudly at startup; JWT verification plugs in behind the same interface.
 */
import { matchTopic } from '@sluice/client/protocol';
import type { Capability, Caps } from '@sluice/client/token';

/** What a principal may do on a topic: the SDK's list of token capabilities. */
export type Action = Capability;
export type { Caps };

export interface Principal {
  /** Client id (the token's `sub`). */
  readonly id: string;
  readonly admin: boolean;
  /** Expiry (ms since epoch); the gateway closes the connection then. */
  readonly expiresAt?: number;
  can(action: Action, topic: string): boolean;
}

export interface Authenticator {
  readonly mode: 'dev' | 'jwt';
  /** Resolves to the principal for `token`, or rejects with AuthError. */
  authenticate(token: string | undefined): Promise<Principal>;
  /** The principal without waiting, when the answer needs no async work (dev mode). */
  authenticateNow?(token: string | undefined): Principal | undefined;
}

export class AuthError extends Error {
  override name = 'AuthError';
  constructor(readonly code: 'unauthorized' | 'forbidden', message: string) {
    super(message);
  }
}

export function capsAllow(caps: Caps, action: Action, topic: string): boolean {
  for (const pattern of Object.keys(caps)) {
    if (caps[pattern]!.includes(action) && matchTopic(pattern, topic)) return true;
  }
  return false;
}

/** Everyone in dev mode: one shared object, not one per connection. */
const DEV_PRINCIPAL: Principal = Object.freeze({ id: 'anonymous', admin: true, can: () => true });

export class DevAuthenticator implements Authenticator {
  readonly mode = 'dev';
  async authenticate(): Promise<Principal> {
    return DEV_PRINCIPAL;
  }

  authenticateNow(): Principal {
    return DEV_PRINCIPAL;
  }
}
