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

/** No credentials, or ones that match no token. */
export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
}

/** Valid credentials that may not do this (the read token on a write route). */
export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
}
