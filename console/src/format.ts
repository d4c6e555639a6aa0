export const when = (ms: number | undefined): string => (ms === undefined ? '—' : new Date(ms).toLocaleString());

export function duration(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** The API takes a stop timeout of up to a day. */
export const MAX_TIMEOUT_S = 86_400;

/** A timeout field's seconds as the API's milliseconds, or the sentence saying what is wrong. */
export function timeoutMs(seconds: string): number | string {
  const s = Number(seconds);
  if (seconds.trim() === '' || !Number.isFinite(s) || s < 0 || s > MAX_TIMEOUT_S) return `The timeout must be a number of seconds from 0 to ${MAX_TIMEOUT_S}.`;
  return Math.round(s * 1000);
}
