/**
 * Builds the operator console (console/src, Preact) into one JSON module, console/dist/assets.json,
 * that the console function imports: the same bytes are served by `npm start` and, bundled into
 * the function, by API Gateway. Script and stylesheet carry their content hash in their names, so
 * they are cached for a year and the page (never cached without revalidation) picks up a new build.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

export interface ConsoleFile {
  type: string;
  /** The file as text. */
  body: string;
  /** The same, gzip-compressed, base64 (API Gateway HTTP APIs do not compress). */
  gzip: string;
  etag: string;
  immutable: boolean;
}
export interface ConsoleAssets {
  /** By name under /console/; `index.html` is the page itself. */
  files: Record<string, ConsoleFile>;
}

const root = dirname(fileURLToPath(import.meta.url));
export const assetsFile = join(root, 'dist', 'assets.json');

const hash = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 16);
const file = (type: string, body: string, immutable: boolean): ConsoleFile => ({
  type,
  body,
  gzip: gzipSync(body, { level: 9 }).toString('base64'),
  etag: `"${hash(body)}"`,
  immutable,
});

export async function buildConsole(): Promise<ConsoleAssets> {
  const result = await build({
    entryPoints: [join(root, 'src', 'main.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    write: false,
    logLevel: 'silent',
  });
  const js = result.outputFiles[0]!.text;
  const css = (
    await build({ entryPoints: [join(root, 'src', 'style.css')], bundle: true, minify: true, write: false, logLevel: 'silent' })
  ).outputFiles[0]!.text;
  const script = `app-${hash(js)}.js`;
  const styles = `app-${hash(css)}.css`;
  const page = readFileSync(join(root, 'src', 'index.html'), 'utf8').replace('{{styles}}', `/console/${styles}`).replace('{{script}}', `/console/${script}`);
  const assets: ConsoleAssets = {
    files: {
      'index.html': file('text/html; charset=utf-8', page, false),
      [script]: file('text/javascript; charset=utf-8', js, true),
      [styles]: file('text/css; charset=utf-8', css, true),
      // Also answered at /favicon.ico, where browsers look when a page names none.
      'favicon.svg': file('image/svg+xml', readFileSync(join(root, 'src', 'favicon.svg'), 'utf8'), false),
    },
  };
  mkdirSync(dirname(assetsFile), { recursive: true });
  writeFileSync(assetsFile, `${JSON.stringify(assets)}\n`);
  return assets;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const assets = await buildConsole();
  for (const [name, f] of Object.entries(assets.files)) {
    process.stdout.write(`console/${name}: ${f.body.length} bytes, ${Buffer.from(f.gzip, 'base64').length} gzipped\n`);
  }
}
