/**
 * `npm run docs`: write docs/openapi.json from the zod schemas and the route table, and the typed
 * client's types (clients/typescript/src/openapi.ts) from that document, with openapi-typescript.
 */
import { writeFileSync } from 'node:fs';
import openapiTS, { COMMENT_HEADER, astToString } from 'openapi-typescript';
import { buildOpenApi } from '../functions/http/openapi.js';

export const OPENAPI_FILE = new URL('../docs/openapi.json', import.meta.url);
export const CLIENT_TYPES_FILE = new URL('../clients/typescript/src/openapi.ts', import.meta.url);
export const renderOpenApi = () => `${JSON.stringify(buildOpenApi(), null, 2)}\n`;

/** The client's types for a document (its text, as docs/openapi.json holds it). */
export async function renderClientTypes(document: string): Promise<string> {
  const ast = await openapiTS(JSON.parse(document) as Parameters<typeof openapiTS>[0], { alphabetize: false });
  return COMMENT_HEADER + astToString(ast);
}

if (process.argv[1]?.endsWith('generate-docs.ts')) {
  const document = renderOpenApi();
  writeFileSync(OPENAPI_FILE, document);
  writeFileSync(CLIENT_TYPES_FILE, await renderClientTypes(document));
  console.log(`wrote ${OPENAPI_FILE.pathname} and ${CLIENT_TYPES_FILE.pathname}`);
}
