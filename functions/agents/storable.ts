/**
 * What a JSON body may hold so that every value in it can be stored as given: DynamoDB refuses an
 * empty attribute name, a number outside its range (magnitudes from 1e-130 to below 1e126) and a
 * document nested more than 32 levels deep; the SDK refuses an integer beyond 2^53 (it would not
 * come back as written: JSON.parse has already rounded 9007199254740993 to ...992); and a lone
 * UTF-16 surrogate is not text UTF-8 can carry. Each is answered with a sentence naming the field.
 */

/**
 * Levels of nesting a body may have. An agent's settings sit two levels deep in its item, a
 * message's metadata two in its record: well inside DynamoDB's 32.
 */
export const MAX_BODY_DEPTH = 16;
/** DynamoDB's smallest magnitude other than 0. */
const SMALLEST = 1e-130;

const fieldName = (path: string[]) => `"${path.join('.')}"`;

/** Why the value cannot be stored as given (a sentence naming the field), or undefined when it can. */
export function unstorable(value: unknown, path: string[] = [], depth = 0): string | undefined {
  if (typeof value === 'number') {
    if (Math.abs(value) > Number.MAX_SAFE_INTEGER) {
      return `Field ${fieldName(path)} is a number too large to keep exactly: whole numbers must be from -9007199254740991 to 9007199254740991 (send larger ones as strings)`;
    }
    if (value !== 0 && Math.abs(value) < SMALLEST) return `Field ${fieldName(path)} is a number too close to 0 to store: the smallest magnitude is 1e-130`;
    return undefined;
  }
  if (typeof value === 'string') {
    return value.isWellFormed() ? undefined : `Field ${fieldName(path)} is not valid Unicode text: it holds a lone surrogate (\\ud800-\\udfff)`;
  }
  if (value === null || typeof value !== 'object') return undefined;
  if (depth >= MAX_BODY_DEPTH) return `Field ${fieldName(path)} is nested too deeply: a request body may nest at most ${MAX_BODY_DEPTH} levels`;
  const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  for (const [key, child] of entries) {
    if (!Array.isArray(value)) {
      if (key === '') return `Field ${path.length ? fieldName(path) : '(the body)'} has an empty key: every key must be at least one character`;
      if (!key.isWellFormed()) return `Field ${fieldName(path)} has a key that is not valid Unicode text (a lone surrogate)`;
    }
    const why = unstorable(child, [...path, key], depth + 1);
    if (why) return why;
  }
  return undefined;
}
