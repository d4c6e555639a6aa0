/**
 * `npm run bench:bundles`: synthesizes the stack with real esbuild bundling, then prints each
 * function's bundle size and the time to import it cold (a fresh Node 22 process per import, the
 * AWS SDK resolved from node_modules as the Lambda runtime provides it).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';

import { join } from 'node:path';
import { percentile } from './support.js';

const out = mkdtempSync(join(process.cwd(), 'cdk.out.bench-'));
execFileSync('npx', ['cdk', 'synth', '--quiet', '--output', out], { stdio: ['ignore', 'ignore', 'inherit'] });
const [templateFile] = execFileSync('ls', [out]).toString().split('\n').filter((f) => f.endsWith('.template.json'));
const template = JSON.parse(readFileSync(join(out, templateFile!), 'utf8')) as {
  Resources: Record<string, { Type: string; Metadata?: Record<string, string> }>;
};

const rows: string[] = [];
for (const [id, resource] of Object.entries(template.Resources)) {
  if (resource.Type !== 'AWS::Lambda::Function' || !resource.Metadata?.['aws:asset:path']) continue;
  const bundle = join(out, resource.Metadata['aws:asset:path'], 'index.mjs');
  const size = statSync(bundle).size;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const probe = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `const t = performance.now(); await import(${JSON.stringify(bundle)}); console.log(performance.now() - t);`],
      { encoding: 'utf8', env: { ...process.env, AGENTS_TABLE: 'a', RECORDS_TABLE: 'r' } },
    );
    if (probe.status !== 0) throw new Error(`import of ${id} failed: ${probe.stderr}`);
    times.push(Number(probe.stdout.trim()));
  }
  rows.push(`${id.replace(/[0-9A-F]{8}$/, '').padEnd(28)} ${(size / 1024).toFixed(0).padStart(6)} KiB   cold import p50 ${percentile(times, 50).toFixed(0).padStart(4)} ms`);
}
console.log(`\nFunction bundles (esbuild, ESM, minified; AWS SDK external), imported on Node ${process.versions.node}\n`);
rows.sort().forEach((r) => console.log(r));
execFileSync('rm', ['-rf', out]);
