/** Every target, in the order the table prints them. Sluice runs first: its figures set shared rates. */
import { natsTarget } from './nats.js';
import { socketIoTarget, uwsTarget, wsTarget } from './node-peer.js';
import { sluiceAuthTarget, sluiceTarget } from './sluice.js';
import type { Target, TargetId } from './target.js';

export const ALL_TARGETS: Target[] = [sluiceTarget, sluiceAuthTarget, uwsTarget, socketIoTarget, wsTarget, natsTarget];

export function targetById(id: TargetId): Target {
  return ALL_TARGETS.find((t) => t.id === id)!;
}
