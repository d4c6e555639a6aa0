import type * as z from 'zod';
import { UUID_PROBLEM } from '../agents/model.js';

type Issue = z.core.$ZodIssue;

const quoted = (path: PropertyKey[]) => `"${path.map(String).join('.')}"`;

/** One sentence a person can act on, naming the field, from the first zod issue. */
export function describeIssue(issue: Issue | undefined, where: 'body' | 'query'): string {
  const place = where === 'body' ? 'Request body' : 'Query';
  if (!issue) return `${place} is not valid`;
  const field = where === 'body' ? `Field ${quoted(issue.path)}` : `Query parameter ${quoted(issue.path)}`;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const prefix = issue.path.length ? `${quoted(issue.path)} has` : `${place} has`;
      return `${prefix} unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    case 'invalid_type':
      if (issue.input === undefined) return `${field} is required`;
      return `${field} must be ${article(issue.expected === 'int' ? 'integer' : issue.expected)}`;
    case 'too_small':
      return `${field} must be ${bound(issue.origin, 'at least', issue.minimum, issue.inclusive)}`;
    case 'too_big':
      return `${field} must be ${bound(issue.origin, 'at most', issue.maximum, issue.inclusive)}`;
    case 'invalid_value':
      return `${field} must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union': {
      // A discriminated union names the values it knows (zod/mini carries no sentences of its own).
      const options = (issue as { options?: unknown[] }).options;
      if (options?.length) return `${field} must be one of ${options.map((v) => JSON.stringify(v)).join(', ')}`;
      return `${field} is not valid: ${issue.message}`;
    }
    case 'invalid_format':
      if (issue.format === 'uuid' || issue.format === 'guid') return `${field} ${UUID_PROBLEM}`;
      // A schema's own sentence ("must name an environment variable ...") over zod's generic one.
      if (!/^Invalid/.test(issue.message)) return `${field} ${issue.message}`;
      return `${field} must be a valid ${issue.format}`;
    default:
      return `${issue.path.length ? field : place} ${issue.message}`;
  }
}

const article = (noun: string) => (/^[aeiou]/i.test(noun) ? `an ${noun}` : `a ${noun}`);

function bound(origin: string, word: string, n: number | bigint, inclusive = true): string {
  const unit = origin === 'string' ? ' characters long' : origin === 'array' ? ' items' : '';
  if (!inclusive) return `${word === 'at least' ? 'greater than' : 'less than'} ${n}${unit}`;
  return `${word} ${n}${unit}`;
}
