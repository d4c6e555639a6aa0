/**
 * `Prefer` (RFC 7240), read the same way by /stop and /messages: `respond-async` answers at once,
 * `wait=N` waits up to N seconds (never past the route's window).
 */
export function parsePrefer(prefer: string | undefined, windowMs: number): { async: boolean; ms: number; applied?: string } {
  if (!prefer) return { async: false, ms: windowMs };
  const prefs = prefer.toLowerCase().split(/\s*,\s*/);
  if (prefs.includes('respond-async')) return { async: true, ms: 0, applied: 'respond-async' };
  const wait = prefs.map((p) => /^wait\s*=\s*(\d{1,6})$/.exec(p)).find(Boolean);
  if (wait) {
    const ms = Math.min(Number(wait[1]) * 1000, windowMs);
    return { async: true, ms, applied: `wait=${ms / 1000}` };
  }
  return { async: false, ms: windowMs };
}
