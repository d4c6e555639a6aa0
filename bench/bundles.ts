/**
 * `npm run bench:bundles`: synthesizes the stack with real esbuild bundling, then prints each
 * function's bundle size and the time to import it cold (a fresh Node 22 process per import, the
 * AWS SDK resolved from node_modules as the Lambda runtime provides it), each against its goal
 * (250 KB; 1.25x the time to import just the DynamoDB clients, same run). Exits non-zero on a miss.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';

import { join } from 'node:path';
import { goal, percentile } from './support.js';

const out = mkdtempSync(join(process.cwd(), 'cdk.out.bench-'));
execFileSync('npx', ['cdk', 'synth', '--quiet', '--output', out], { stdio: ['ignore', 'ignore', 'inherit'] });
const [templateFile] = execFileSync('ls', [out]).toString().split('\n').filter((f) => f.endsWith('.template.json'));
const template = JSON.parse(readFileSync(join(out, templateFile!), 'utf8')) as {
  Resources: Record<string, { Type: string; Metadata?: Record<string, string> }>;
};

/** p50 of 5 cold imports (a fresh Node process each) of what `code` imports. */
function coldImport(label: string, code: string): number {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const probe = spawnSync(process.execPath, ['--input-type=module', '-e', `const t = performance.now(); ${code}; console.log(performance.now() - t);`], {
      encoding: 'utf8',
      env: { ...process.env, AGENTS_TABLE: 'a', RECORDS_TABLE: 'r' },
    });
    if (probe.status !== 0) throw new Error(`import of ${label} failed: ${probe.stderr}`);
    times.push(Number(probe.stdout.trim()));
  }
  return percentile(times, 50);
}

try {
  // The yardstick: the AWS SDK clients every function loads at cold start (the others, Step
  // Functions, EventBridge, SQS and Secrets Manager, are imported on first use).
  const sdk = coldImport('the DynamoDB clients', "await import('@aws-sdk/client-dynamodb'); await import('@aws-sdk/lib-dynamodb')");
  const rows: string[] = [];
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function' || !resource.Metadata?.['aws:asset:path']) continue;
    const bundle = join(out, resource.Metadata['aws:asset:path'], 'index.mjs');
    const size = statSync(bundle).size;
    const name = id.replace(/[0-9A-F]{8}$/, '');
    const p50 = coldImport(name, `await import(${JSON.stringify(bundle)})`);
    rows.push(goal(`${name}: bundle`, size / 1000, 250, 'KB', 0));
    rows.push(goal(`${name}: cold import p50 ${p50.toFixed(0)} ms / DynamoDB clients`, p50 / sdk, 1.25, 'x', 2));
  }
  console.log(`\nFunction bundles (esbuild, ESM, minified; AWS SDK external), imported on Node ${process.versions.node}`);
  console.log(`importing just the DynamoDB clients (@aws-sdk/client-dynamodb, lib-dynamodb): p50 ${sdk.toFixed(0)} ms\n`);
  rows.sort().forEach((r) => console.log(r));
} finally {
  execFileSync('rm', ['-rf', out]);
}
