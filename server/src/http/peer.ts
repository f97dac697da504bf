/**
 * Who sent a request: the client's address and the scheme it used, as seen through the proxies the
 * gateway trusts (`--trust-proxy`). One answer for every use — admin connection rows, logs, the
 * per-address HELLO cap, and per-client rate limits in dev mode.
 *
 * `X-Forwarded-For` is a list each proxy appends the address it received from to. Only the direct
 * peer is known to be true; the list is read from the right while its addresses are trusted
 * proxies, and the first address that is not is the client. A peer that is not a trusted proxy
 * gets its headers ignored (anyone can send them). `X-Forwarded-Proto` is believed from a trusted
 * direct peer only.
 */
import { BlockList, isIP } from 'node:net';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

export interface Peer {
  /** The client's address (the direct peer's unless a trusted proxy forwarded another). */
  address: string;
  /** The direct peer's address. */
  via: string;
  /** `https` when the gateway serves TLS or a trusted proxy says the client used it. */
  proto: 'http' | 'https';
}

/**
 * One spelling per address: IPv6 compressed (uWS writes every group, `0000:…:0001`), and an IPv4
 * peer on a dual-stack socket (`::ffff:7f00:1`, `::ffff:127.0.0.1`) as IPv4. Anything else as given.
 */
export function normalAddress(address: string): string {
  const a = address.trim().toLowerCase();
  if (isIP(a) !== 6) return a;
  const short = new URL(`http://[${a}]`).hostname.slice(1, -1); // WHATWG URL compresses, dotted tails become hex
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(short);
  if (!m) return short;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}
const normal = normalAddress;

export class PeerResolver {
  private readonly trusted = new BlockList();
  private readonly any: boolean;

  /** `trust`: addresses, CIDRs and `loopback` (see config.ts parseTrustProxy); `tls`: the gateway serves HTTPS. */
  constructor(trust: readonly string[], private readonly tls = false) {
    for (const t of trust) {
      if (t === 'loopback') {
        this.trusted.addSubnet('127.0.0.0', 8, 'ipv4');
        this.trusted.addAddress('::1', 'ipv6');
        continue;
      }
      const [addr, bits] = t.split('/');
      const type = isIP(addr!) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.trusted.addAddress(normal(addr!), type);
      else this.trusted.addSubnet(normal(addr!), Number(bits), type);
    }
    this.any = trust.length > 0;
  }

  trusts(address: string): boolean {
    if (!this.any) return false;
    const a = normal(address);
    const family = isIP(a);
    return family !== 0 && this.trusted.check(a, family === 6 ? 'ipv6' : 'ipv4');
  }

  /** The peer of a request. MUST be called in the synchronous top of a handler (it reads `req`). */
  of(res: HttpResponse, req: HttpRequest): Peer {
    const via = normal(Buffer.from(res.getRemoteAddressAsText()).toString());
    const own: 'http' | 'https' = this.tls ? 'https' : 'http';
    if (!this.trusts(via)) return { address: via, via, proto: own };
    return this.resolve(via, req.getHeader('x-forwarded-for'), req.getHeader('x-forwarded-proto'), own);
  }

  /** `of` without uWS: `via` a trusted proxy's address, the two headers as received ('' if absent). */
  resolve(via: string, forwardedFor: string, forwardedProto: string, own: 'http' | 'https' = 'http'): Peer {
    let address = via;
    const hops = forwardedFor.split(',').map(normal).filter((h) => h.length > 0);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (isIP(hop) === 0) break; // garbage (or an obfuscated name): stop at the last good address
      address = hop;
      if (!this.trusts(hop)) break;
    }
    // Several proxies may each append: the first value is what the client used.
    const p = forwardedProto.split(',')[0]!.trim().toLowerCase();
    const proto = p === 'https' || p === 'http' ? p : own;
    return { address, via, proto };
  }
}
