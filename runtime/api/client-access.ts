// Which client addresses the API serves (PUFFINDB_API_ALLOWED_CIDRS), checked against the
// caller's source IP as the adapter reports it: the socket's peer under Node, the API
// Gateway or function URL request context on Lambda. Forwarding headers are not trusted:
// any client can write them.

import { BlockList, isIP } from 'node:net';
import type { Context } from 'hono';
import { PuffinError } from '../errors.ts';

/** The allowed CIDRs as one matcher; a malformed entry is a configuration error. */
export function allowedClients(cidrs: readonly string[]): BlockList | undefined {
  if (cidrs.length === 0) return undefined;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, bits, extra] = cidr.split('/');
    const family = isIP(address);
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    const max = family === 6 ? 128 : 32;
    if (!family || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
      throw new PuffinError('bad_request', `PUFFINDB_API_ALLOWED_CIDRS has an invalid entry '${cidr}'; expected e.g. 10.0.0.0/8 or 2001:db8::/32`);
    }
    list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

interface AdapterEnv {
  /** @hono/node-server */
  incoming?: { socket?: { remoteAddress?: string } };
  /** hono/aws-lambda: API Gateway HTTP API v2 and function URLs; REST API v1. */
  requestContext?: { http?: { sourceIp?: string }; identity?: { sourceIp?: string } };
}

/** The caller's source IP, or undefined when the adapter does not say. */
export function clientAddress(c: Context): string | undefined {
  const env = (c.env ?? {}) as AdapterEnv;
  return env.requestContext?.http?.sourceIp ?? env.requestContext?.identity?.sourceIp ?? env.incoming?.socket?.remoteAddress;
}

/** Throws 'forbidden' unless the caller's address is in `allowed` (no list: everyone). */
export function checkClient(c: Context, allowed: BlockList | undefined): void {
  if (!allowed) return;
  const address = clientAddress(c);
  const family = address ? isIP(address) : 0;
  if (!address || !family || !allowed.check(address, family === 6 ? 'ipv6' : 'ipv4')) {
    throw new PuffinError('forbidden', `client address ${address ?? '(unknown)'} is not in the API's allowed CIDRs (PUFFINDB_API_ALLOWED_CIDRS)`);
  }
}
