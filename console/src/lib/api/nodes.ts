/**
 * /v1/admin/nodes: the gateway nodes of the cluster (one row, the gateway itself, without cluster
 * mode). Rows of other resources name their node by id; `nodeName` turns it into something a
 * person reads.
 */
import type { Admin } from '@sluice/client/protocol';
import { request } from './http.js';

export type NodeRow = Admin.NodeRow;

export function listNodes(): Promise<NodeRow[]> {
  return request<NodeRow[]>('GET', '/v1/admin/nodes');
}

/** A node's address without the scheme (`127.0.0.1:9400`), or its id when it is not listed. */
export function nodeName(nodes: readonly NodeRow[], id: string): string {
  const n = nodes.find((x) => x.id === id);
  return n ? n.address.replace(/^[a-z]+:\/\//, '') : id;
}
