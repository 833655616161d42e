// The few typed errors the service throws on purpose. The API maps them to HTTP statuses in one
// place (src/api/error-handler.ts); processes that start up print their message and exit.

import type { ErrorDetail } from './config/config-error.js';

export { ConfigError, type ErrorDetail } from './config/config-error.js';

/** A request or payload that fails its schema; `details` name each bad field. */
export class ValidationError extends Error {
  override name = 'ValidationError';
  constructor(
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** The request is well formed but the thing is in the wrong state for it. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** A backing service (Redis, Postgres) cannot be reached right now. */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
  constructor(
    readonly service: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** Which scopes a refused request needed, and (for a 403) what the token it came with has. */
export interface ScopeRefusal {
  required: readonly string[];
  token?: string;
  granted?: readonly string[];
}

/** No credentials, or ones that match no token. */
export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
  readonly refusal: ScopeRefusal;
  constructor(message: string, required: readonly string[]) {
    super(message);
    this.refusal = { required };
  }
}

/** A valid token whose scopes do not cover the route (the read token on a write route). */
export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
  readonly refusal: ScopeRefusal;
  constructor(message: string, required: readonly string[], token: { name: string; scopes: readonly string[] }) {
    super(message);
    this.refusal = { required, token: token.name, granted: token.scopes };
  }
}
