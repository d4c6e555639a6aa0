/**
 * Everything this process writes to stdout and stderr from now on (the handlers' JSON logs
 * included), for tests that must show something never reaches a log line. The handlers' log
 * lines are kept for the test only (the run's output stays quiet); anything else passes through.
 */
export function captureOutput(): { text(): string; restore(): void } {
  const chunks: string[] = [];
  const streams = [process.stdout, process.stderr];
  const originals = streams.map((s) => s.write.bind(s));
  streams.forEach((stream, i) => {
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      chunks.push(text);
      // JSON log lines and EMF metric lines are kept for the test only.
      if (text.startsWith('{"level":') || text.startsWith('{"_aws":')) return true;
      return (originals[i] as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
  });
  return {
    text: () => chunks.join(''),
    restore: () => streams.forEach((stream, i) => (stream.write = originals[i] as typeof stream.write)),
  };
}
