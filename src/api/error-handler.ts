// The one place where errors become HTTP responses: `{error, message, details?}`. Messages of
// 5xx errors stay in the log; the client learns only what it can act on.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { isRedisAway } from '../redis.js';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
} from '../errors.js';

const CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
  500: 'internal',
  503: 'unavailable',
};

function statusOf(err: Error & { statusCode?: number }): number {
  if (err instanceof ValidationError) return 400;
  if (err instanceof UnauthorizedError) return 401;
  if (err instanceof ForbiddenError) return 403;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  if (err instanceof UnavailableError) return 503;
  // Fastify's own errors (unparseable JSON, body too large, wrong content type) carry a status.
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) return err.statusCode;
  return 500;
}

export interface ErrorReply {
  status: number;
  body: { error: string; message: string; details?: unknown; required?: readonly string[]; token?: string; granted?: readonly string[] };
}

/** What an error answers: its status and the `{error, message, details?}` body. */
export function errorReply(err: Error & { statusCode?: number }): ErrorReply {
  const status = statusOf(err);
  return {
    status,
    body: {
      error: CODES[status] ?? 'error',
      message: status >= 500 && !(err instanceof UnavailableError) ? 'internal error' : err.message,
      ...(err instanceof ValidationError && err.details.length > 0 ? { details: err.details } : {}),
      // A refused token: which scopes would do (and, for a 403, what this token has).
      ...(err instanceof UnauthorizedError || err instanceof ForbiddenError ? err.refusal : {}),
    },
  };
}

/** An error worth a look in the log: a 5xx other than a service being away. */
export const isServerFault = (err: Error, status: number) => status >= 500 && !(err instanceof UnavailableError);

/**
 * What the router refuses before any route runs (a malformed percent-encoding, a parameter over
 * the limit): Fastify's `frameworkErrors` option, answered in the service's shape.
 */
export function answerFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body } = errorReply(err);
  request.log.debug({ err: { name: err.name, code: err.code, message: err.message }, status }, 'request refused by the router');
  void reply.status(status).send(body);
}

/**
 * A server fault raised while the producer's Redis is away (refused, or silent past its command
 * bound) is that outage, whatever the driver said: a 503 naming Redis.
 */
export function asRedisOutage(err: Error, redis: Redis): Error {
  if (errorReply(err).status < 500 || err instanceof UnavailableError || !isRedisAway(err, redis)) return err;
  return new UnavailableError('redis', 'Redis is unreachable', { cause: err });
}

export function installErrorHandler(app: FastifyInstance, redis: Redis): void {
  app.setErrorHandler((thrown: FastifyError, request, reply) => {
    const err = asRedisOutage(thrown, redis);
    const { status, body } = errorReply(err);
    if (isServerFault(err, status)) request.log.error({ err }, 'request failed');
    // The request's one log line (request-log.ts) carries the status; why is a detail.
    else request.log.debug({ err: { name: err.name, message: err.message }, status }, 'request refused');
    if (status === 401) {
      const basic = request.url.startsWith('/admin');
      void reply.header('www-authenticate', basic ? 'Basic realm="caelum-scheduler"' : 'Bearer realm="caelum-scheduler"');
    }
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });
}
