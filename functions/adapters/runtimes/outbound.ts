import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';

/**
 * Outgoing calls of the runtimes (an agent's worker, a model endpoint): bounded in size, and
 * under the `public` policy refused to any address that is not the public internet, checked on
 * the address actually connected to (a DNS name cannot rebind past the check). Redirects are not
 * followed.
 */
/** Addresses that are not the public internet: loopback, private, link-local (metadata), CGNAT, multicast, reserved. */
const nonPublic = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24],
  ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) nonPublic.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96], ['2001:db8::', 32]] as const) {
  nonPublic.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:127.0.0.1`, `::ffff:7f00:1`). */
function mappedIpv4(address: string): string | undefined {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (dotted) return dotted;
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!hex) return undefined;
  const [hi, lo] = [parseInt(hex[1]!, 16), parseInt(hex[2]!, 16)];
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/** Why an address may not be called under the `public` policy, or undefined when it may. */
export function refusalOf(address: string): string | undefined {
  const ip = mappedIpv4(address) ?? address;
  const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  if (!nonPublic.check(ip, family)) return undefined;
  if (ip.startsWith('169.254.')) return `${address} is a link-local address (the instance metadata service lives there)`;
  if (ip === '::1' || ip.startsWith('127.')) return `${address} is a loopback address`;
  return `${address} is not a public address`;
}

export class Refused extends Error {}

/** DNS lookup that refuses non-public answers: checked on the address actually connected to (no rebinding window). */
function publicLookup(hostname: string, options: LookupOptions, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '');
    const refused = addresses.map((a) => refusalOf(a.address)).find(Boolean);
    if (refused) return callback(new Refused(`refused to call ${hostname}: ${refused} (RUNTIME_URLS=public)`), '');
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}

export interface OutboundOptions {
  urls: 'public' | 'any';
  /** Larger answers are cut and the call fails. */
  maxBytes: number;
}

/**
 * A `fetch` for the runtimes (and for the `openai` client's `fetch` option): node:http(s) with
 * the address check in the connection's own lookup, the answer read into memory up to `maxBytes`.
 */
export function outboundFetch(opts: OutboundOptions) {
  return async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (opts.urls === 'public' && isIP(host)) {
      const refused = refusalOf(host);
      if (refused) throw new Refused(`refused to call ${host}: ${refused} (RUNTIME_URLS=public)`);
    }
    const headers: Record<string, string> = {};
    new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined)).forEach((value, name) => (headers[name] = value));
    const body = init.body === undefined || init.body === null ? undefined : typeof init.body === 'string' ? init.body : Buffer.from(await new Response(init.body).arrayBuffer());
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const options: RequestOptions = {
      method: init.method ?? 'GET',
      headers,
      ...(init.signal && { signal: init.signal }),
      ...(opts.urls === 'public' && { lookup: publicLookup as RequestOptions['lookup'] }),
    };
    return new Promise<Response>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > opts.maxBytes) req.destroy(new Error(`the answer is larger than ${opts.maxBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') responseHeaders.set(name, value);
          resolve(new Response(res.statusCode === 204 ? null : Buffer.concat(chunks), { status: res.statusCode ?? 0, headers: responseHeaders }));
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  };
}
