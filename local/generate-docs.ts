/** `npm run docs`: write docs/openapi.json from the zod schemas and the route table. */
import { writeFileSync } from 'node:fs';
import { buildOpenApi } from '../functions/http/openapi.js';

export const OPENAPI_FILE = new URL('../docs/openapi.json', import.meta.url);
export const renderOpenApi = () => `${JSON.stringify(buildOpenApi(), null, 2)}\n`;

if (process.argv[1]?.endsWith('generate-docs.ts')) {
  writeFileSync(OPENAPI_FILE, renderOpenApi());
  console.log(`wrote ${OPENAPI_FILE.pathname}`);
}
