import type { Deps } from '../../functions/agents/ports.js';

/** A local stack: its own dependencies and each function's, every one with its own store (and grants). */
export interface Functions {
  allDeps(): Deps[];
}

type Method<T, K extends keyof T> = T[K] extends (...args: infer A) => infer R ? (...args: A) => R : never;

/**
 * Stand in for one call of a store in every function of the stack (each function's store sends
 * through its own granted client): `wrap` gets the function's own method. Returns the undo.
 */
function patchStore<S extends 'agents' | 'records', K extends keyof Deps[S]>(
  app: Functions,
  store: S,
  method: K,
  wrap: (original: Method<Deps[S], K>) => Method<Deps[S], K>,
): () => void {
  const undo = app.allDeps().map((d) => {
    const target = d[store] as unknown as Record<K, Method<Deps[S], K>>;
    const original = target[method];
    target[method] = wrap((original as (...a: unknown[]) => unknown).bind(target) as Method<Deps[S], K>);
    return () => (target[method] = original);
  });
  return () => undo.forEach((u) => u());
}

export const patchAgentsStore = <K extends keyof Deps['agents']>(app: Functions, method: K, wrap: (original: Method<Deps['agents'], K>) => Method<Deps['agents'], K>) =>
  patchStore(app, 'agents', method, wrap);
export const patchRecordsStore = <K extends keyof Deps['records']>(app: Functions, method: K, wrap: (original: Method<Deps['records'], K>) => Method<Deps['records'], K>) =>
  patchStore(app, 'records', method, wrap);
