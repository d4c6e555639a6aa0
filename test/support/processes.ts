import { spawn, type ChildProcess } from 'node:child_process';

/** A Node process of ours (local/main.ts, the reference worker...), its output collected. */
export interface NodeProcess {
  proc: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
}

/**
 * Start `node <args>` with the current environment plus `env` (no vitest here: benches use it too).
 * `group`: in a process group of its own, as a terminal's foreground job is (a test can then send
 * Ctrl-C's SIGINT to the whole group).
 */
export function startNode(args: string[], env: Record<string, string> = {}, opts: { group?: boolean } = {}): NodeProcess {
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.group ?? false });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, exited, output: () => out };
}
