import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The local server's own lines (startup, requests, events, the reaper) in the functions' JSON
 * shape, at INFO whatever level the functions log at (POWERTOOLS_LOG_LEVEL).
 */
const serverLogger = new Logger({ serviceName: 'agents-local', logLevel: 'INFO' });
export const printLine = (line: string): void => serverLogger.info(line);

const SHOWN_FIRST = new Set(['level', 'message', 'timestamp', 'service', 'function_name', 'correlation_id']);
/** Lambda context keys that say nothing on one machine. */
const HIDDEN = new Set(['sampling_rate', 'function_arn', 'function_memory_size', 'function_request_id', 'cold_start', 'xray_trace_id']);

/** One JSON log line as a person reads it: `12:00:01.234 INFO  [StopAgent 3f2a…] agent stopped agentId=… outcome=drained`. */
export function prettyLine(line: string): string {
  let item: Record<string, unknown>;
  try {
    item = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof item.level !== 'string' || typeof item.message !== 'string') return line;
  const time = typeof item.timestamp === 'string' ? item.timestamp.slice(11, 23) : '';
  const where = [item.function_name, typeof item.correlation_id === 'string' ? item.correlation_id.slice(0, 8) : undefined].filter(Boolean).join(' ');
  const rest = Object.entries(item)
    .filter(([k]) => !SHOWN_FIRST.has(k) && !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return [time, item.level.padEnd(5), where && `[${where}]`, item.message, ...rest].filter(Boolean).join(' ');
}

/** LOG_FORMAT=pretty: every JSON line this process writes to stdout, made readable (locally only). */
export function prettyStdout(): void {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    const pretty = text
      .split('\n')
      .map((l) => (l.startsWith('{') ? prettyLine(l) : l))
      .join('\n');
    return (write as (...a: unknown[]) => boolean)(pretty, ...rest);
  }) as typeof process.stdout.write;
}
