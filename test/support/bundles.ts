import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { App } from 'aws-cdk-lib';
import { buildApp, cdkJsonContext } from '../../infra/app.js';
import { PROJECT_ROOT } from '../../infra/agent-function.js';

/**
 * The Lambda bundles exactly as `cdk synth` builds them (the stack's own NodejsFunction settings,
 * esbuild run by CDK), each copied alone into an empty folder with only the AWS SDK beside it, as
 * the nodejs22.x runtime provides it, and run in a Node 22 process of its own, like a Lambda
 * container: so a dependency missing from a bundle, or a handler that mis-reads a real event,
 * fails here, not after a deploy.
 */
export interface BundledFunction {
  name: string;
  dir: string;
  /** The function's environment in the template (values that are references kept as objects). */
  environment: Record<string, unknown>;
}

export function buildBundles(): { root: string; functions: Map<string, BundledFunction>; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'agents-bundles-'));
  const outdir = join(root, 'cdk.out');
  const app = new App({ outdir, context: { ...cdkJsonContext(), 'aws:cdk:enable-asset-metadata': true } });
  // CDK announces each asset it bundles (as it builds the constructs) on stderr: kept back unless the build fails.
  const announced: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => (announced.push(String(chunk)), true)) as typeof process.stderr.write;
  let assembly: ReturnType<typeof app.synth>;
  let stack: ReturnType<typeof buildApp>['stack'];
  try {
    stack = buildApp(app).stack;
    assembly = app.synth();
  } catch (err) {
    write(announced.join(''));
    throw err;
  } finally {
    process.stderr.write = write;
  }
  const template = assembly.getStackByName(stack.stackName).template as { Resources: Record<string, { Metadata?: Record<string, string>; Properties: any }> };
  const functions = new Map<string, BundledFunction>();
  for (const [name, fn] of Object.entries(stack.functions)) {
    const resource = template.Resources[stack.getLogicalId(fn.node.defaultChild as never)]!;
    const asset = resource.Metadata?.['aws:asset:path'];
    if (!asset) throw new Error(`no bundle for ${name}: asset metadata missing`);
    const dir = join(root, 'functions', name);
    mkdirSync(dir, { recursive: true });
    cpSync(join(outdir, asset), dir, { recursive: true });
    functions.set(name, { name, dir, environment: resource.Properties.Environment?.Variables ?? {} });
  }
  provideAwsSdk(join(root, 'functions', 'node_modules'));
  return { root, functions, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/**
 * What the runtime has beside a function: every `@aws-sdk/*` package of the lockfile and the
 * packages they depend on (their `@smithy/*`, `tslib`, ...), and nothing else of ours.
 */
function provideAwsSdk(target: string): void {
  const lock = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; dev?: boolean }>;
  };
  const wanted = new Set<string>();
  const visit = (name: string) => {
    if (wanted.has(name) || !lock.packages[`node_modules/${name}`]) return;
    wanted.add(name);
    const entry = lock.packages[`node_modules/${name}`]!;
    for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) visit(dep);
  };
  for (const path of Object.keys(lock.packages)) {
    const m = /^node_modules\/(@aws-sdk\/[^/]+)$/.exec(path);
    if (m) visit(m[1]!);
  }
  for (const name of wanted) {
    const from = join(PROJECT_ROOT, 'node_modules', name);
    if (!existsSync(from)) continue;
    const to = join(target, name);
    mkdirSync(dirname(to), { recursive: true });
    symlinkSync(from, to, 'dir');
  }
}

const HARNESS = `
import { createInterface } from 'node:readline';
const { handler } = await import(process.argv[2]);
for await (const line of createInterface({ input: process.stdin })) {
  const { id, event, remainingMs, traceId } = JSON.parse(line);
  // The runtime sets each invocation's trace header before it calls the handler.
  if (traceId) process.env._X_AMZN_TRACE_ID = traceId;
  const endsAt = Date.now() + remainingMs;
  const context = { awsRequestId: id, functionName: process.env.AWS_LAMBDA_FUNCTION_NAME, getRemainingTimeInMillis: () => endsAt - Date.now() };
  let out;
  try {
    out = { id, result: await handler(event, context) };
  } catch (err) {
    out = { id, error: String(err && err.stack || err) };
  }
  process.stdout.write('@@RESULT ' + JSON.stringify(out) + '\\n');
}
`;

/** One bundle running in its own Node process (a warm container): invoke it with events. */
export class BundleProcess {
  private readonly proc: ChildProcess;
  private readonly pending = new Map<string, (out: { result?: unknown; error?: string }) => void>();
  private sequence = 0;
  private exited?: string;
  output = '';

  constructor(fn: BundledFunction, env: Record<string, string>) {
    const harness = join(dirname(fn.dir), 'harness.mjs');
    if (!existsSync(harness)) writeFileSync(harness, HARNESS);
    this.proc = spawn(process.execPath, [harness, join(fn.dir, 'index.mjs')], { cwd: fn.dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      if (!line.startsWith('@@RESULT ')) {
        this.output += `${line}\n`;
        return;
      }
      const out = JSON.parse(line.slice('@@RESULT '.length)) as { id: string; result?: unknown; error?: string };
      this.pending.get(out.id)?.(out);
      this.pending.delete(out.id);
    });
    this.proc.stderr!.on('data', (c: Buffer) => (this.output += c.toString()));
    this.proc.once('exit', (code) => {
      this.exited = `process exited (${code}): ${this.output.slice(-2000)}`;
      for (const resolve of this.pending.values()) resolve({ error: this.exited });
      this.pending.clear();
    });
  }

  /** `traceId`: the invocation's X-Ray trace header, as Lambda sets it under active tracing. */
  invoke<T = any>(event: unknown, remainingMs = 29_000, traceId?: string): Promise<T> {
    const id = String(++this.sequence);
    if (this.exited) return Promise.reject(new Error(this.exited));
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, (out) => (out.error !== undefined ? reject(new Error(out.error)) : resolve(out.result as T)));
      this.proc.stdin!.write(`${JSON.stringify({ id, event, remainingMs, traceId })}\n`);
    });
  }

  stop(): void {
    this.proc.kill();
  }
}

/** An API Gateway HTTP API payload 2.0 event, as API Gateway sends it to a route's function. */
export function httpEvent(opts: {
  method: string;
  path: string;
  routeKey: string;
  pathParameters?: Record<string, string>;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  body?: string;
  base64?: boolean;
}) {
  const now = new Date();
  const rawQueryString = new URLSearchParams(opts.query ?? {}).toString();
  return {
    version: '2.0',
    routeKey: opts.routeKey,
    rawPath: opts.path,
    rawQueryString,
    headers: { host: 'abcdef123.execute-api.eu-west-1.amazonaws.com', 'user-agent': 'curl/8.5.0', 'x-forwarded-proto': 'https', ...opts.headers },
    ...(opts.query && { queryStringParameters: opts.query }),
    ...(opts.pathParameters && { pathParameters: opts.pathParameters }),
    requestContext: {
      accountId: '123456789012',
      apiId: 'abcdef123',
      domainName: 'abcdef123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abcdef123',
      http: { method: opts.method, path: opts.path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8.5.0' },
      requestId: `req-${Math.random().toString(36).slice(2)}`,
      routeKey: opts.routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(opts.body !== undefined && { body: opts.base64 ? Buffer.from(opts.body).toString('base64') : opts.body }),
    isBase64Encoded: opts.base64 ?? false,
  };
}
