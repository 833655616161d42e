// One log line per answered request, at the level the caller picks: info for `api`, debug for
// `dev` and `demo`, whose terminal belongs to the banner and the CLI's output. Fastify's default
// lines (one when a request comes in, one when it completes, each carrying the whole request,
// and one more for an unknown route) are replaced by this one. It names the token that made the
// request (never the token itself): the audit trail of who did what, reads and changes alike.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LogController } from 'fastify';

export type RequestLogLevel = 'info' | 'debug';

export class RequestLog extends LogController {
  constructor(private readonly level: RequestLogLevel) {
    super();
  }

  override incomingRequest(): void {}

  override routeNotFound(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const entry = {
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
      ...(request.principal ? { token: request.principal.name } : {}),
    };
    if (error) reply.log.error({ ...entry, err: error }, 'request errored');
    else request.log[this.level](entry, 'request');
  }
}
