// The error a bad config file or environment raises, and the turning of zod issues into the
// `path: message` lines it prints. Here rather than in src/errors.ts because config imports
// nothing of the project (DESIGN.md's boundary table); src/errors.ts re-exports ConfigError.
import type { z } from 'zod';

export interface ErrorDetail {
  path: string;
  message: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly source: string,
    readonly problems: ErrorDetail[],
  ) {
    super(`${source}:\n${problems.map((p) => `  ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n')}`);
  }
}

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
