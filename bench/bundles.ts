/**
 * `npm run bench:bundles`: synthesizes the stack with real esbuild bundling, then prints each
 * function's bundle size and the time to import it cold (a fresh Node 22 process per import, the
 * AWS SDK resolved from node_modules as the Lambda runtime provides it), each against its goal
 * (300 KB; 1.25x the time to import what every function loads before any of its own code: the
 * DynamoDB clients and the Tracer, same run), and what the Tracer costs alone. Exits non-zero on a
 * miss.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';

import { join } from 'node:path';
import { goal, percentile } from './support.js';

const out = mkdtempSync(join(process.cwd(), 'cdk.out.bench-'));
execFileSync('npx', ['cdk', 'synth', '--quiet', '--output', out], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, BUNDLE_METAFILE: '1' } });
const [templateFile] = execFileSync('ls', [out]).toString().split('\n').filter((f) => f.endsWith('.template.json'));
const template = JSON.parse(readFileSync(join(out, templateFile!), 'utf8')) as {
  Resources: Record<string, { Type: string; Metadata?: Record<string, string> }>;
};

/**
 * One cold import (a fresh Node process) of what `code` imports, in ms. Each process first loads
 * `node:http`, as Lambda's own runtime client has (it talks to the Runtime API over it:
 * aws-lambda-nodejs-runtime-interface-client, RAPIDClient) before it imports a handler; without
 * that, a bundle that touches `node:http` (middy does, for STATUS_CODES) would be charged ~20 ms
 * a deployed function never pays.
 */
function coldImport(label: string, code: string): number {
  const probe = spawnSync(process.execPath, ['--input-type=module', '-e', `await import('node:http'); const t = performance.now(); ${code}; console.log(performance.now() - t);`], {
    encoding: 'utf8',
    env: { ...process.env, AGENTS_TABLE: 'a', RECORDS_TABLE: 'r' },
  });
  if (probe.status !== 0) throw new Error(`import of ${label} failed: ${probe.stderr}`);
  return Number(probe.stdout.trim());
}

// The yardstick: the AWS SDK clients every function loads at cold start (the others, Step
// Functions, EventBridge, SQS and Secrets Manager, are imported on first use), and the Tracer
// (with the X-Ray SDK) bundled as the functions bundle it.
const tracerBundle = join(out, 'tracer.mjs');
execFileSync('npx', ['esbuild', '--bundle', '--platform=node', '--format=esm', '--target=node22', '--minify', '--log-level=warning', "--banner:js=import { createRequire } from 'module'; const require = createRequire(import.meta.url);", '--external:@aws-sdk/*', `--outfile=${tracerBundle}`], {
  input: "export * from '@aws-lambda-powertools/tracer';",
  stdio: ['pipe', 'ignore', 'inherit'],
});
const DYNAMODB = "await import('@aws-sdk/client-dynamodb'); await import('@aws-sdk/lib-dynamodb')";
const SDK = `${DYNAMODB}; await import(${JSON.stringify(tracerBundle)})`;
const ROUNDS = 15;

/** What a bundle is made of, from esbuild's metafile: the largest packages, our code, in KB. */
function contents(metafile: string): string {
  const meta = JSON.parse(readFileSync(metafile, 'utf8')) as { outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }> };
  const by = new Map<string, number>();
  for (const output of Object.values(meta.outputs)) {
    for (const [file, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1] ?? 'our code';
      by.set(pkg, (by.get(pkg) ?? 0) + bytesInOutput);
    }
  }
  return [...by].sort((a, b) => b[1] - a[1]).filter(([, bytes]) => bytes >= 1000).map(([pkg, bytes]) => `${pkg} ${(bytes / 1000).toFixed(0)}`).join(', ');
}

try {
  const rows: string[] = [];
  const made: string[] = [];
  const sdkTimes: number[] = [];
  // What the Tracer adds to every cold start, on its own.
  const dynamoOnly: number[] = [];
  const withTracer: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    dynamoOnly.push(coldImport('the DynamoDB clients', DYNAMODB));
    withTracer.push(coldImport('the DynamoDB clients and the Tracer', SDK));
  }
  const tracerMs = percentile(withTracer.map((t, i) => t - dynamoOnly[i]!), 50);
  rows.push(goal(`(the Tracer, ${(statSync(tracerBundle).size / 1000).toFixed(0)} KB): cold import over the DynamoDB clients' ${percentile(dynamoOnly, 50).toFixed(0)} ms`, tracerMs, 40, 'ms', 0));
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function' || !resource.Metadata?.['aws:asset:path']) continue;
    const dir = join(out, resource.Metadata['aws:asset:path']);
    const bundle = join(dir, 'index.mjs');
    const size = statSync(bundle).size;
    const name = id.replace(/[0-9A-F]{8}$/, '');
    // The function and the yardstick alternate, so the machine's drift weighs on both alike.
    const own: number[] = [];
    const sdk: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      sdk.push(coldImport('the DynamoDB clients and the Tracer', SDK));
      own.push(coldImport(name, `await import(${JSON.stringify(bundle)})`));
    }
    sdkTimes.push(...sdk);
    // Each round's ratio (its two imports ran back to back), then the median of those.
    const ratio = percentile(own.map((t, i) => t / sdk[i]!), 50);
    rows.push(goal(`${name}: bundle`, size / 1000, 300, 'KB', 0));
    rows.push(goal(`${name}: cold import p50 ${percentile(own, 50).toFixed(0)} / ${percentile(sdk, 50).toFixed(0)} ms`, ratio, 1.25, 'x', 2));
    const beside = join(dir, 'node_modules', 'openai', 'index.mjs');
    const a2a = join(dir, 'node_modules', '@a2a-js', 'sdk', 'client.mjs');
    const besides = [
      ...(existsSync(beside) ? [`openai ${(statSync(beside).size / 1000).toFixed(0)}`] : []),
      ...(existsSync(a2a) ? [`@a2a-js/sdk/client ${(statSync(a2a).size / 1000).toFixed(0)}`] : []),
    ];
    const openai = besides.length ? `; beside it: ${besides.join(', ')}` : '';
    made.push(`${name.padEnd(20)} ${contents(join(dir, 'index.meta.json'))}${openai}`);
  }
  console.log(`\nFunction bundles (esbuild, ESM, minified; AWS SDK external), imported on Node ${process.versions.node}`);
  console.log(`${ROUNDS} rounds per function, each a fresh process importing just the DynamoDB clients and the Tracer, then one importing the function;`);
  console.log(`the ratio is the median of the rounds' ratios (the yardstick over all rounds: p50 ${percentile(sdkTimes, 50).toFixed(0)} ms)\n`);
  rows.sort().forEach((r) => console.log(r));
  console.log("\nWhat each bundle holds, KB (esbuild metafile; the openai beside a bundle is imported at an llm agent's first message, the a2a client at an a2a agent's first call):");
  made.sort().forEach((m) => console.log(m));
} finally {
  execFileSync('rm', ['-rf', out]);
}
