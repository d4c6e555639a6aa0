/**
 * The operator console (console/): `GET /` leads to it, `GET /console` is its page and
 * `GET /console/{file}` its script, stylesheet and icon (also at `GET /favicon.ico`), built into
 * one JSON module by console/build.ts.
 * Public, like /health: it serves the same static files to everyone and reads no data; every call
 * the page makes goes to the API and needs a key when auth is on.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { ConsoleAssets } from '../../console/build.js';
import built from '../../console/dist/assets.json' with { type: 'json' };
import { routeNotFound } from './errors.js';
import { noneMatch } from './etag.js';

// Not the API's middleware: this function checks no key and so wires no key store (its bundle
// would fail at cold start without one).
const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' };

/** The page loads only its own script and stylesheet and talks only to this origin. */
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export function consoleHandler(assets: ConsoleAssets) {
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const path = event.rawPath;
    if (path === '/') {
      const body = { success: true, message: 'The console is at /console', data: { console: '/console', health: '/health' } };
      return { statusCode: 302, headers: { Location: '/console', ...JSON_HEADERS }, body: `${JSON.stringify(body)}\n` };
    }
    const name = path === '/console' ? 'index.html' : path === '/favicon.ico' ? 'favicon.svg' : path.slice('/console/'.length);
    const file = Object.hasOwn(assets.files, name) ? assets.files[name] : undefined;
    if (!file) {
      const missing = routeNotFound(event.requestContext.http.method, path);
      return { statusCode: 404, headers: JSON_HEADERS, body: JSON.stringify({ success: false, error: missing.message, code: missing.code }) };
    }
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      'Content-Type': file.type,
      ETag: file.etag,
      // The page revalidates (it names the current build's files); those names change with their bytes.
      'Cache-Control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      Vary: 'Accept-Encoding',
    };
    if (noneMatch(event.headers?.['if-none-match'], file.etag)) return { statusCode: 304, headers, body: '' };
    if (/\bgzip\b/.test(event.headers?.['accept-encoding'] ?? '')) {
      return { statusCode: 200, headers: { ...headers, 'Content-Encoding': 'gzip' }, body: file.gzip, isBase64Encoded: true };
    }
    return { statusCode: 200, headers, body: file.body };
  };
}

export const handler = consoleHandler(built);
