import { createHash } from 'node:crypto';

/**
 * A GET answer's ETag names the representation: the agent's version (which PATCH's If-Match
 * pins) and a hash of the body, `"<version>-<hash>"`, or `"<hash>"` where there is no version.
 * The hash is what a poller needs: an admission or a heartbeat changes `inFlight` and
 * `lastActivityAt` without a new version.
 */
export function representationTag(versionTag: string | undefined, body: string): string {
  const hash = createHash('sha256').update(body).digest('base64url').slice(0, 22);
  const version = versionTag === undefined ? undefined : /^"(\d+)"$/.exec(versionTag)?.[1];
  return version === undefined ? `"${hash}"` : `"${version}-${hash}"`;
}

/** `If-None-Match` (RFC 9110 13.1.2, weak comparison): `*` or any listed tag equal to this one. */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}
