/**
 * agentctl: the agents lifecycle service from a terminal, on the typed client. Human output by
 * default (tables; colours only on a terminal), `--json` for scripts. Exit codes: 0 done (stopped),
 * 1 failed, 2 timed out, 3 bad input (the command's or the API's 4xx on what was given).
 */
import { readFileSync } from 'node:fs';
import { styleText } from 'node:util';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { AgentsClient, ApiError, type Agent, type AgentStatus, type FleetStop, type Message, type StopRecord, type StopResult } from './index.js';

export const EXIT = { ok: 0, failed: 1, timedOut: 2, badInput: 3 } as const;

/** Where the CLI writes: stdout for results, stderr for progress and errors (a script reads stdout). */
export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

class BadInput extends Error {}

/** A duration with its unit: 1500ms, 30s, 5m, 1h (as milliseconds). */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`"${text}" is not a duration: give a number and a unit, e.g. 1500ms, 30s, 5m`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h']);
}

function positiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${text}" is not a whole number of 1 or more`);
  return n;
}

/** A JSON object from a file path, or written inline. */
function jsonArgument(text: string): Record<string, unknown> {
  let source = text;
  if (!text.trim().startsWith('{')) {
    try {
      source = readFileSync(text, 'utf8');
    } catch (err) {
      throw new InvalidArgumentError(`cannot read ${text}: ${(err as Error).message}`);
    }
  }
  try {
    const value: unknown = JSON.parse(source);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new InvalidArgumentError(`${text} is not a JSON object (${(err as Error).message})`);
  }
}

const STATUSES: AgentStatus[] = ['inactive', 'active', 'stopping'];
/** Statuses and outcomes, coloured by what they mean to an operator. */
const STATUS_COLORS: Record<string, Parameters<typeof styleText>[0]> = {
  active: 'green', completed: 'green', drained: 'green', stopping: 'yellow', inactive: 'dim',
  failed: 'red', timed_out: 'red', interrupted: 'red',
};

export async function run(argv: string[], io: Io): Promise<number> {
  const color = Boolean(io.out.isTTY) && !io.env.NO_COLOR;
  const paint = (format: Parameters<typeof styleText>[0], text: string) => (color ? styleText(format, text) : text);
  const print = (text = ''): void => void io.out.write(`${text}\n`);
  const say = (text: string): void => void io.err.write(`${text}\n`);
  const statusColor = (s: string) => paint(STATUS_COLORS[s] ?? 'reset', s);

  const program = new Command('agentctl')
    .description('Manage agents on the agents lifecycle service: list, start, send, and stop one agent or the whole fleet.')
    .option('--url <url>', 'API base URL (default: AGENTS_API_URL, else http://localhost:3000)')
    .option('--api-key <key>', 'API key (default: AGENTS_API_KEY)')
    .option('--json', 'print JSON for scripts')
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) })
    .exitOverride()
    .showHelpAfterError();

  let exitCode: number = EXIT.ok;
  /** `--json` before the command or after it: `agentctl --json list` and `agentctl list --json`. */
  let asJson = false;
  program.hook('preAction', (_, command) => {
    asJson = Boolean(program.opts().json || command.opts().json);
  });
  const globals = () => ({ ...program.opts<{ url?: string; apiKey?: string }>(), json: asJson });
  const client = () => {
    const { url, apiKey } = globals();
    return new AgentsClient({ baseUrl: url ?? io.env.AGENTS_API_URL, apiKey: apiKey ?? io.env.AGENTS_API_KEY, pollMs: 250 });
  };
  const json = (value: unknown) => print(JSON.stringify(value, null, 2));

  const table = (rows: string[][], header: string[]) => {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? '').length)));
    const line = (cells: string[]) => cells.map((c, i) => c + ' '.repeat(widths[i]! - visible(c).length)).join('  ').trimEnd();
    print(paint('bold', line(header)));
    for (const r of rows) print(line(r));
  };
  const when = (ms?: number) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '-');

  const showAgent = (a: Agent) => {
    if (globals().json) return json(a);
    const rows: [string, string][] = [
      ['agent', a.agentId],
      ['name', a.name],
      ['status', statusColor(a.status)],
      ['in flight', String(a.inFlight)],
      ['runtime', JSON.stringify(a.runtime)],
      ['idle timeout', a.idleTimeoutMs == null ? 'none' : `${a.idleTimeoutMs} ms`],
      ['version', String(a.version)],
      ...(a.stop ? [['stop', `${a.stop.stopId} (${a.stop.reason}, deadline ${when(a.stop.deadline)})`] as [string, string]] : []),
      ...(a.lastStop ? [['last stop', `${a.lastStop.outcome} at ${when(a.lastStop.stoppedAt)}, ${a.lastStop.interrupted} interrupted`] as [string, string]] : []),
    ];
    for (const [k, v] of rows) print(`${paint('bold', k.padEnd(13))}${v}`);
  };

  const stopExit = (outcome: StopResult['outcome']) => (outcome === 'timed_out' ? EXIT.timedOut : EXIT.ok);
  const showStop = (r: StopResult) => {
    if (globals().json) return json(r);
    const rec = r.record;
    print(`${r.agentId}: ${statusColor(r.outcome)}, ${r.interrupted} interrupted${rec ? `, ${rec.drained} drained${rec.failed ? `, ${rec.failed} failed` : ''}, in ${rec.durationMs} ms` : ''}`);
    if (rec?.interruptedMessageIds.length) print(`  interrupted: ${rec.interruptedMessageIds.join(', ')}`);
    // Drained with failures: its workers stopped responding; the stop cut nothing.
    if (rec?.failedMessageIds?.length) print(`  failed (worker stopped responding): ${rec.failedMessageIds.join(', ')}`);
  };

  /** One line that rewrites itself on a terminal; one line per change elsewhere. */
  const progressLine = () => {
    let last = '';
    return {
      show(text: string) {
        if (text === last) return;
        last = text;
        io.err.write(io.err.isTTY ? `\r\x1b[2K${text}` : `${text}\n`);
      },
      end() {
        if (io.err.isTTY && last) io.err.write('\n');
      },
    };
  };
  const bar = (done: number, total: number, width = 30) => {
    const filled = total === 0 ? 0 : Math.round((done / total) * width);
    return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  };
  /** A fleet stop's progress line: its bar and counts once agents are selected. */
  const fleetProgress = ({ counts: k, done }: FleetStop) =>
    k.selected === 0 && !done
      ? 'selecting agents...'
      : `${bar(k.stopped + k.failed + k.skipped, k.selected)} ${k.stopped}/${k.selected} stopped, ${k.inProgress} in progress, ${k.failed} failed`;

  program
    .command('list')
    .description('list agents (every page)')
    .addOption(new Option('--status <status>', 'only agents of this status').choices(STATUSES))
    .action(async (o: { status?: AgentStatus }) => {
      const agents: Agent[] = [];
      for await (const a of client().agents(o.status ? { status: o.status } : {})) agents.push(a);
      if (globals().json) return json(agents);
      table(agents.map((a) => [a.agentId, a.name, statusColor(a.status), String(a.inFlight), a.lastStop ? `${a.lastStop.outcome} ${when(a.lastStop.stoppedAt)}` : '-']), ['AGENT', 'NAME', 'STATUS', 'IN FLIGHT', 'LAST STOP']);
      say(`${agents.length} agent${agents.length === 1 ? '' : 's'}`);
    });

  program
    .command('get')
    .description('show an agent')
    .argument('<agentId>')
    .action(async (agentId: string) => showAgent(await client().getAgent(agentId)));

  program
    .command('create')
    .description('create an agent (inactive until started)')
    .requiredOption('--name <name>', 'its name')
    .option('--description <text>')
    .option('--runtime <file-or-json>', 'runtime, e.g. {"type":"echo"} or a JSON file', jsonArgument)
    .option('--settings <file-or-json>', 'settings, a JSON object or file', jsonArgument)
    .option('--idle-timeout <duration>', 'stopped when idle this long, e.g. 15m', parseDuration)
    .option('--start', 'start it too')
    .action(async (o: { name: string; description?: string; runtime?: Record<string, unknown>; settings?: Record<string, unknown>; idleTimeout?: number; start?: boolean }) => {
      const c = client();
      const body = { name: o.name, ...(o.description && { description: o.description }), ...(o.runtime && { runtime: o.runtime }), ...(o.settings && { settings: o.settings }), ...(o.idleTimeout !== undefined && { idleTimeoutMs: o.idleTimeout }) };
      let agent = await c.createAgent(body as Parameters<AgentsClient['createAgent']>[0]);
      if (o.start) agent = await c.startAgent(agent.agentId);
      if (globals().json) return json(agent);
      print(agent.agentId);
    });

  program
    .command('start')
    .description('start an agent')
    .argument('<agentId>')
    .action(async (agentId: string) => {
      const agent = await client().startAgent(agentId);
      if (globals().json) return json(agent);
      print(`${agent.agentId}: ${statusColor(agent.status)}`);
    });

  program
    .command('delete')
    .description('delete an inactive agent and its records')
    .argument('<agentId>')
    .action(async (agentId: string) => {
      await client().deleteAgent(agentId);
      if (globals().json) return json({ agentId, deleted: true });
      print(`${agentId}: deleted`);
    });

  program
    .command('stop')
    .description('stop an agent (gracefully unless --force), or with --all the fleet, and wait for the outcome')
    .argument('[agentId]')
    .option('--all', 'stop every agent the selector matches (a fleet stop)')
    .addOption(new Option('--status <status>', 'with --all: the agents of this status').choices(['active', 'stopping']).default('active'))
    .option('--force', 'stop at once, cutting messages in flight')
    .option('--timeout <duration>', 'how long a graceful stop waits for messages in flight (default 30s)', parseDuration)
    .option('--concurrency <n>', 'with --all: agents stopped at a time (default 10)', positiveInt)
    .option('--idempotency-key <key>', 'with --all: follow the fleet stop this key started (printed by an earlier run)')
    .option('--watch', 'show the drain while it runs')
    .action(async (agentId: string | undefined, o: { all?: boolean; status: 'active' | 'stopping'; force?: boolean; timeout?: number; concurrency?: number; idempotencyKey?: string; watch?: boolean }) => {
      if (Boolean(agentId) === Boolean(o.all)) throw new BadInput('Give an agent id, or --all for the fleet (not both)');
      const graceful = !o.force;
      const c = client();
      if (o.all) {
        const key = o.idempotencyKey ?? `agentctl-${crypto.randomUUID()}`;
        const line = progressLine();
        const op = await c.fleetStop(
          { status: o.status, graceful, ...(o.timeout !== undefined && { timeout: o.timeout }), ...(o.concurrency && { concurrency: o.concurrency }) },
          {
            idempotencyKey: key,
            onStart: (f, { replayed }) =>
              say(replayed ? `following fleet stop ${f.operationId}, which this key started` : `fleet stop ${f.operationId} started (to follow it again: --idempotency-key ${key})`),
            onProgress: (f) => o.watch && line.show(fleetProgress(f)),
          },
        );
        line.end();
        showFleet(op);
        exitCode = op.counts.failed > 0 || op.status === 'failed' ? EXIT.failed : op.counts.timed_out > 0 ? EXIT.timedOut : EXIT.ok;
        return;
      }
      const line = progressLine();
      const result = await c.stop(agentId!, { graceful, ...(o.timeout !== undefined && { timeout: o.timeout }) }, {
        respondAsync: Boolean(o.watch),
        onProgress: (p) => o.watch && line.show(`stopping: ${p.inFlight} in flight, deadline in ${Math.max(0, (p.deadline - Date.now()) / 1000).toFixed(1)} s`),
      });
      line.end();
      showStop(result);
      exitCode = stopExit(result.outcome);
    });

  const showFleet = (op: FleetStop) => {
    if (globals().json) return json(op);
    const k = op.counts;
    if (k.selected === 0 && op.status === 'completed') return print(`${op.operationId}: ${statusColor(op.status)}: no agent matched, nothing to stop`);
    print(`${op.operationId}: ${statusColor(op.status)}: ${k.stopped} of ${k.selected} stopped (${k.drained} drained, ${k.timed_out} timed out, ${k.forced} forced), ${k.failed} failed, ${k.skipped} skipped`);
    for (const f of op.failures) print(`  ${paint('red', 'failed')} ${f.agentId}: ${f.error}`);
  };

  program
    .command('send')
    .description('send a message; waits for the reply (or with --async, queues it on the worker)')
    .argument('<agentId>')
    .argument('<text>')
    .option('--async', 'run it on the worker (202); with --watch, wait until it ends')
    .option('--watch', 'with --async: wait for the outcome')
    .option('--message-id <id>', 'its id (a retry with the same id is answered the same)')
    .action(async (agentId: string, text: string, o: { async?: boolean; watch?: boolean; messageId?: string }) => {
      const c = client();
      const body = { text, ...(o.messageId && { messageId: o.messageId }) };
      let message: Message;
      if (o.async && o.watch) {
        const line = progressLine();
        const started = Date.now();
        message = await c.sendAndWait(agentId, body, { onProgress: (m) => line.show(`${m.messageId}: processing, ${((Date.now() - started) / 1000).toFixed(0)} s`) });
        line.end();
      } else {
        message = await c.sendMessage(agentId, body, { async: Boolean(o.async) });
      }
      exitCode = ['processing', 'completed'].includes(message.status) ? EXIT.ok : EXIT.failed;
      if (globals().json) return json(message);
      print(message.status === 'completed' ? (message.reply ?? '') : `${message.messageId}: ${statusColor(message.status)}${message.error ? `: ${message.error}` : ''}`);
    });

  program
    .command('messages')
    .description("an agent's message history, newest first")
    .argument('<agentId>')
    .action(async (agentId: string) => {
      const all: Message[] = [];
      for await (const m of client().messages(agentId)) all.push(m);
      if (globals().json) return json(all);
      table(all.map((m) => [m.messageId, statusColor(m.status), when(m.createdAt), oneLine(m.text), oneLine(m.reply ?? m.error ?? '')]), ['MESSAGE', 'STATUS', 'CREATED', 'TEXT', 'REPLY / ERROR']);
    });

  program
    .command('stops')
    .description("an agent's stop history, newest first")
    .argument('<agentId>')
    .action(async (agentId: string) => {
      const all: StopRecord[] = [];
      for await (const s of client().stops(agentId)) all.push(s);
      if (globals().json) return json(all);
      table(all.map((s) => [s.stopId, statusColor(s.outcome), s.reason, when(s.stoppedAt), `${s.durationMs} ms`, String(s.drained), s.interruptedMessageIds.join(',') || '-']), ['STOP', 'OUTCOME', 'REASON', 'STOPPED', 'TOOK', 'DRAINED', 'INTERRUPTED']);
    });

  for (const command of program.commands) command.option('--json', 'print JSON for scripts');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    if (err instanceof BadInput) {
      say(`agentctl: ${err.message}`);
      return EXIT.badInput;
    }
    if (err instanceof ApiError) {
      say(`agentctl: ${err.message}${err.code ? ` (${err.status} ${err.code})` : ` (${err.status})`}`);
      return [400, 404, 412, 413, 415, 422].includes(err.status) ? EXIT.badInput : EXIT.failed;
    }
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    say(`agentctl: ${cause === 'ECONNREFUSED' ? `nothing answers at ${client().baseUrl} (set --url or AGENTS_API_URL)` : (err as Error).message}`);
    return EXIT.failed;
  }
}

const oneLine = (s: string, max = 60) => {
  const flat = s.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};
// eslint-disable-next-line no-control-regex
const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

