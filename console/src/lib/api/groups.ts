/**
 * /v1/admin/topics/{topic}/groups: a topic's consumer groups, a row each (live with the topic's
 * admin stream, lib/live/topic.svelte.ts); moving a group's position, and replaying its dead
 * letters. (`PUT …/groups/{group}` changes its settings; the console does not offer it yet.)
 */
import type { Admin } from '@sluice/client/protocol';
import { adminTopicPath, request } from './http.js';

export type GroupRow = Admin.GroupRow;
export type GroupMemberRow = Admin.GroupMemberRow;
export type GroupSettings = Admin.GroupSettings;
export type GroupReset = Admin.GroupReset;

const groupPath = (topic: string, group: string) => `${adminTopicPath(topic)}/groups/${encodeURIComponent(group)}`;
const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

/**
 * Moves the group to an offset (1 to head + 1), or to the first message stored at or after a time
 * (ms since the epoch). Leases out now are dropped: their acknowledgements will be refused.
 */
export function resetGroup(topic: string, group: string, to: GroupReset): Promise<GroupRow> {
  return request<GroupRow>('POST', `${groupPath(topic, group)}/reset`, json(to));
}

/** Appends the group's dead letters back to the topic, as new messages; answers how many. */
export function replayDeadLetters(topic: string, group: string): Promise<Admin.Replayed> {
  return request<Admin.Replayed>('POST', `${groupPath(topic, group)}/replay`);
}
