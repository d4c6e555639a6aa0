import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { matchRoute } from '../../functions/http/routes.js';

/**
 * Every answer the suite's API client receives is checked against docs/openapi.json: the status
 * is one the operation documents (or a fallback 404/405 where no route matches), the body is JSON
 * and matches that response's schema, where additional properties are refused. A handler that
 * leaks a field the document does not declare fails the test that saw it.
 */
const doc = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  'x-fallback-responses': Record<string, unknown>;
};

const ajv = new Ajv2020({ strict: false, allErrors: false });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
ajv.addSchema(doc, 'openapi');

const pointer = (...parts: string[]) => parts.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');
const validators = new Map<string, ReturnType<Ajv2020['compile']>>();

function validatorFor(ref: string) {
  let v = validators.get(ref);
  if (!v) {
    v = ajv.compile({ $ref: ref });
    validators.set(ref, v);
  }
  return v;
}

/** Why this answer breaks the document, or undefined when it keeps to it. */
export function contractViolation(method: string, target: string, status: number, contentType: string | null, body: unknown): string | undefined {
  const path = target.split('?')[0]!;
  const { route } = matchRoute(method, path);
  const responses = route ? doc.paths[route.path]?.[route.method.toLowerCase()]?.responses : doc['x-fallback-responses'];
  const where = route ? `${route.method} ${route.path}` : 'the fallback route';
  if (!responses) return `${where} is not in the document`;
  if (!(String(status) in responses)) return `${where} answered ${status}, which the document does not list (${Object.keys(responses).join(', ')})`;
  // A response documented without content (304 Not Modified) has no body.
  if (!(responses[String(status)] as { content?: unknown }).content) return body === undefined ? undefined : `${where} ${status} answered a body`;
  if (!contentType?.startsWith('application/json')) return `${where} ${status} answered Content-Type ${contentType}`;
  if (body === undefined) return `${where} ${status} answered a body that is not JSON`;
  const ref = route
    ? `openapi#/${pointer('paths', route.path, route.method.toLowerCase(), 'responses', String(status), 'content', 'application/json', 'schema')}`
    : `openapi#/${pointer('x-fallback-responses', String(status), 'content', 'application/json', 'schema')}`;
  const validate = validatorFor(ref);
  if (validate(body)) return undefined;
  return `${where} ${status}: ${ajv.errorsText(validate.errors, { dataVar: 'body' })} in ${JSON.stringify(body).slice(0, 600)}`;
}

/** Whether a request body keeps to the document's schema for that operation. */
export function requestBodyValid(method: string, path: string, body: unknown): boolean {
  return validatorFor(`openapi#/${pointer('paths', path, method.toLowerCase(), 'requestBody', 'content', 'application/json', 'schema')}`)(body) as boolean;
}
