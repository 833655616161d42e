import type { z } from 'zod';
import { ValidationError, type ErrorDetail } from './errors.js';

/** Turns zod issues into `path: message` details, paths dotted as an operator would type them. */
export function issuesToDetails(issues: readonly z.core.$ZodIssue[]): ErrorDetail[] {
  return issues.flatMap((issue) => {
    const path = issue.path.map(String);
    // zod reports unknown keys on the parent object; name each key itself instead.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...path, key].join('.'), message: 'unknown field' }));
    }
    // A bad record key: zod says only "Invalid key in record"; the key's own issue says why.
    if (issue.code === 'invalid_key' && issue.issues[0]) {
      return [{ path: path.join('.'), message: issue.issues[0].message }];
    }
    return [{ path: path.join('.'), message: issue.message }];
  });
}

/** Parses input from outside (a body, a query, a CLI flag) or throws a ValidationError naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = issuesToDetails(result.error.issues);
  const first = details[0];
  throw new ValidationError(`invalid ${what}: ${first ? `${first.path || '(body)'}: ${first.message}` : 'bad input'}`, details);
}
