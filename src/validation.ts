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
