// Who sent a request: a client through a proxy we trust, a process on this machine talking to the
// server directly, or anyone else. Trust is configuration, never a guess from headers:
//   - EDGE_SECRET: the proxy proves itself with a shared secret it adds to every request (the
//     provided Caddyfile does), so a local process cannot pass for it;
//   - TRUSTED_PROXIES: addresses/CIDRs of proxies (a load balancer, an nginx) whose
//     X-Forwarded-For is believed.
// "Local" (a loopback peer that is neither of those and carries no sign of having been relayed)
// may read /metrics without a token and is not rate limited: a proxy on this machine that is not
// configured must never get those privileges for the whole internet behind it.
import { BlockList, isIP } from 'node:net';
import { createSecretCheck } from '../auth/secret-check.ts';

export const EDGE_SECRET_HEADER = 'x-edge-secret';

/** Headers a relaying proxy adds; a request carrying any of them is not from a local tool. */
const RELAYED = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'via', EDGE_SECRET_HEADER];

export interface ClientAddress {
  /** The request carried the proxy's shared EDGE_SECRET (and may be answered by offload). */
  fromEdge: boolean;
  /** Through a trusted proxy: EDGE_SECRET, or a TRUSTED_PROXIES peer. */
  viaProxy: boolean;
  /** The client: from X-Forwarded-For when viaProxy (and it names one), the TCP peer otherwise. */
  clientIp: string;
  /** A process on this machine, straight to the server. */
  local: boolean;
}

export type ResolveClient = (peer: string | undefined, headers: Headers) => ClientAddress;

export function createClientResolver(options: { trustedProxies: readonly string[]; edgeSecret: string | undefined }): ResolveClient {
  const trusted = addressList(options.trustedProxies);
  const isEdgeSecret = createSecretCheck([options.edgeSecret]);
  const isTrusted = (address: string) => matches(trusted, address);
  return (rawPeer, headers) => {
    const peer = rawPeer === undefined ? undefined : unmapped(rawPeer);
    const offered = headers.get(EDGE_SECRET_HEADER);
    const fromEdge = offered !== null && isEdgeSecret(offered);
    const viaProxy = fromEdge || (peer !== undefined && isTrusted(peer));
    const forwarded = viaProxy ? forwardedClient(headers.get('x-forwarded-for'), isTrusted) : undefined;
    return {
      fromEdge,
      viaProxy,
      clientIp: forwarded ?? peer ?? 'unknown',
      local: !viaProxy && peer !== undefined && isLoopback(peer) && !RELAYED.some((name) => headers.has(name)),
    };
  };
}

const LOOPBACK = addressList(['127.0.0.0/8', '::1']);

function isLoopback(address: string): boolean {
  return matches(LOOPBACK, unmapped(address));
}

/**
 * The client named by X-Forwarded-For: each proxy appends the address it received the request
 * from, so reading from the right, the first entry that is not one of our proxies is the client;
 * anything further left was written by the client itself and proves nothing.
 */
function forwardedClient(header: string | null, isTrusted: (address: string) => boolean): string | undefined {
  const entries = (header ?? '').split(',').map((entry) => unmapped(entry.trim())).filter((entry) => isIP(entry) !== 0);
  for (let i = entries.length - 1; i >= 0; i--) if (!isTrusted(entries[i]!)) return entries[i];
  return entries[0];
}

function addressList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return list;
}

function matches(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** `::ffff:203.0.113.5` (an IPv4 peer on a dual-stack socket) is the IPv4 address it carries. */
function unmapped(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}
