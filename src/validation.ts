import type { z } from 'zod';
import { issuesToDetails } from './config/config-error.js';
import { ValidationError } from './errors.js';

/** Parses input from outside (a body, a query, a CLI flag) or throws a ValidationError naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = issuesToDetails(result.error.issues);
  const first = details[0];
  throw new ValidationError(`invalid ${what}: ${first ? `${first.path || '(body)'}: ${first.message}` : 'bad input'}`, details);
}

// Postgres stores no NUL byte (in text or jsonb) and no unpaired UTF-16 surrogate (in jsonb).
// Free text and free JSON from a client are checked for both here, so such input is a 400 naming
// the field rather than a 500 from Postgres.
const UNSTORABLE = /[\u0000\p{Cs}]/u;
const UNSTORABLE_MESSAGE = 'must not contain a NUL byte or an unpaired UTF-16 surrogate';

/** The path, below a value, of its first string (or object key) Postgres cannot store. */
function unstorableAt(value: unknown): (string | number)[] | undefined {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? [] : undefined;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const below = unstorableAt(item);
      if (below) return [i, ...below];
    }
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, item] of Object.entries(value)) {
    if (UNSTORABLE.test(key)) return [key];
    const below = unstorableAt(item);
    if (below) return [key, ...below];
  }
  return undefined;
}

/** Refuses a value (a string, or JSON at any depth) holding a string Postgres cannot store, naming where. */
export function storable<S extends z.ZodType>(schema: S): S {
  return schema.superRefine((value, ctx) => {
    const path = unstorableAt(value);
    if (path) ctx.addIssue({ code: 'custom', message: UNSTORABLE_MESSAGE, path });
  }) as S;
}
