import type { AgentsStore } from '../../functions/adapters/dynamodb/agents-store.js';
import type { Deps } from '../../functions/agents/ports.js';

/** A local stack: its own dependencies and each function's, every one with its own store (and grants). */
export interface Functions {
  allDeps(): Deps[];
}

type Method<K extends keyof AgentsStore> = AgentsStore[K] extends (...args: infer A) => infer R ? (...args: A) => R : never;

/**
 * Stand in for one call of the agents store in every function of the stack (each function's
 * store sends through its own granted client): `wrap` gets the function's own method. Returns
 * the undo.
 */
export function patchAgentsStore<K extends keyof AgentsStore>(app: Functions, method: K, wrap: (original: Method<K>) => Method<K>): () => void {
  const undo = app.allDeps().map(({ agents }) => {
    const original = agents[method] as unknown as Method<K>;
    (agents as unknown as Record<K, Method<K>>)[method] = wrap((original as (...a: unknown[]) => unknown).bind(agents) as Method<K>);
    return () => ((agents as unknown as Record<K, Method<K>>)[method] = original);
  });
  return () => undo.forEach((u) => u());
}
