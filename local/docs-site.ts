import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorResponse } from '../functions/http/middleware.js';
import { buildOpenApi } from '../functions/http/openapi.js';

/**
 * The API reference on the local server: /openapi.json (generated from the zod schemas) and
 * /docs, rendered by Swagger UI served from node_modules (no CDN). Public: it holds no data.
 */
const uiDir = join(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'), '..');
const assets: Record<string, { file: string; type: string }> = {
  '/docs/swagger-ui.css': { file: 'swagger-ui.css', type: 'text/css; charset=utf-8' },
  '/docs/swagger-ui-bundle.js': { file: 'swagger-ui-bundle.js', type: 'text/javascript; charset=utf-8' },
};

const page = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Agents lifecycle API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;

/** The page's own script, a file so that the policy below allows no inline script. */
const init = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, docExpansion: 'list', defaultModelsExpandDepth: 0 });\n`;

/**
 * The docs page runs only its own files (Swagger UI sets inline styles), calls only this server,
 * and is never framed (no clickjacking of "Try it out").
 */
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

let openApi: Record<string, unknown> | undefined;

/**
 * Answers the docs page, its assets and /openapi.json; false for anything else (`/` is the console's).
 * The document served says what this server requires now: the lock only while auth is on.
 */
export function serveDocs(req: IncomingMessage, res: ServerResponse, authRequired: () => Promise<boolean>): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/openapi.json') {
    openApi ??= buildOpenApi();
    // "Try it out" goes to the server the page came from, whatever its host and port.
    const origin = `http://${req.headers.host ?? 'localhost:3000'}`;
    void authRequired().then(
      (required) => {
        res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ ...openApi, security: required ? [{ bearerKey: [] }] : [], servers: [{ url: origin, description: 'this server' }] }, null, 2));
      },
      (err: unknown) => {
        // The key store could not say: the API's own answer for that (503 when it is down).
        const result = errorResponse(err);
        res.writeHead(result.statusCode ?? 500, result.headers as Record<string, string>);
        res.end(result.body);
      },
    );
    return true;
  }
  if (path === '/docs' || path === '/docs/') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', ...PAGE_HEADERS });
    res.end(page);
    return true;
  }
  if (path === '/docs/init.js') {
    res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end(init);
    return true;
  }
  const asset = assets[path ?? ''];
  if (asset) {
    res.writeHead(200, { 'Content-Type': asset.type, 'Cache-Control': 'public, max-age=3600' });
    res.end(readFileSync(join(uiDir, asset.file)));
    return true;
  }
  return false;
}
