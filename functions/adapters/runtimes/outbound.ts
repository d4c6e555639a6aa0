import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { tracedRequest } from '../tracing.js';

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
/**
 * IPv6 that is not the public internet, and every IPv6 form that embeds or translates an IPv4
 * (which could be a private one): IPv4-compatible ::/96 (with :: and ::1), IPv4-translated
 * ::ffff:0:0:0/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32.
 * IPv4-mapped ::ffff:0:0/96 is judged by the IPv4 it maps (a dual-stack socket connects to it).
 */
for (const [net, prefix] of [
  ['::', 96], ['::ffff:0:0:0', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 32], ['2001:2::', 48], ['2001:10::', 28],
  ['2001:20::', 28], ['2001:db8::', 32], ['2002::', 16], ['3fff::', 20], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) {
  nonPublic.addSubnet(net, prefix, 'ipv6');
}

/** The eight 16-bit groups of an IPv6 address (`::`, a trailing dotted IPv4 and a zone id allowed). */
function groupsOf(address: string): number[] | undefined {
  let text = address.replace(/%.*$/, '').toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array<number>(Math.max(0, fill)).fill(0), ...tail];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:127.0.0.1`, `::ffff:7f00:1`). */
function mappedIpv4(address: string): string | undefined {
  if (isIP(address) !== 6) return undefined;
  const g = groupsOf(address);
  if (!g || g.slice(0, 5).some((x) => x !== 0) || g[5] !== 0xffff) return undefined;
  return [g[6]! >> 8, g[6]! & 255, g[7]! >> 8, g[7]! & 255].join('.');
}

/** Why an address may not be called under the `public` policy, or undefined when it may. */
export function refusalOf(address: string): string | undefined {
  const ip = mappedIpv4(address) ?? address.replace(/%.*$/, '');
  const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  if (!nonPublic.check(ip, family)) return undefined;
  if (ip.startsWith('169.254.')) return `${address} is a link-local address (the instance metadata service lives there)`;
  if (ip.startsWith('127.') || (family === 'ipv6' && groupsOf(ip)?.join(':') === '0:0:0:0:0:0:0:1')) return `${address} is a loopback address`;
  return `${address} is not a public address`;
}

export class Refused extends Error {}

/** Why a plain-http URL is not called where only https is allowed. */
const PLAIN_HTTP_REFUSED = 'refused to call an http:// URL: only https:// is allowed (the operator allows plain http with RUNTIME_ALLOW_HTTP=1)';

/** DNS lookup that refuses non-public answers: checked on the address actually connected to (no rebinding window). */
function publicLookup(hostname: string, options: LookupOptions, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '');
    // Named without the address it resolved to: the sentence reaches the caller, and must not
    // tell them what a name resolves to inside the network (a DNS oracle).
    if (addresses.some((a) => refusalOf(a.address))) return callback(new Refused(`refused to call ${hostname}: it resolves to an address that is not public (RUNTIME_URLS=public)`), '');
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}

export interface OutboundOptions {
  urls: 'public' | 'any';
  /** Plain `http://` allowed (RUNTIME_ALLOW_HTTP); otherwise only `https://` is called. */
  allowHttp: boolean;
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
    if (url.protocol !== 'https:' && !opts.allowHttp) throw new Refused(PLAIN_HTTP_REFUSED);
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
    return tracedRequest(url, options.method!, () => new Promise<Response>((resolve, reject) => {
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
    }));
  };
}
