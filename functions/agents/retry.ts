/**
 * Jittered exponential backoff between attempts of a write that lost a transaction conflict or a
 * condition on a hot agent item (capped at ~100 ms).
 */
export const backoff = (attempt: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.min(100, 2 ** attempt) * (0.5 + Math.random())));
