// Bull Board at /admin/queues, for tokens with the operate scope. Browsers cannot send a bearer
// header to a page, so HTTP basic auth with the token as the password works too (any user name).
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import { toError } from '../errors.js';
import type { QueueSet } from '../queues/queue-set.js';
import { asRedisOutage, errorReply, isServerFault } from './error-handler.js';
import { authorize, basicPassword, bearerToken, type Authenticator } from './auth.js';

export const BULL_BOARD_PATH = '/admin/queues';

type BoardReply = ReturnType<Parameters<FastifyAdapter['setErrorHandler']>[0]>;

export async function bullBoard(app: FastifyInstance, queues: QueueSet, auth: Authenticator): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: queues.all().map((e) => new BullMQAdapter(e.queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'caelum-scheduler' } },
  });
  // Bull Board answers its own errors in its scope: through the service's one mapping instead, so
  // a failure while Redis is away is a 503 naming Redis rather than a 500 with the driver's words.
  serverAdapter.setErrorHandler((thrown) => {
    const err = asRedisOutage(toError(thrown), queues.connection);
    const reply = errorReply(err);
    if (isServerFault(err, reply.status)) app.log.error({ err }, 'Bull Board request failed');
    // Its types list only the statuses Bull Board sends itself; the adapter sends any.
    return reply as unknown as BoardReply;
  });
  await app.register(async (scope) => {
    // Bull Board installs its own error handler in this scope, so refuse here rather than throw.
    // Its routes are Bull Board's own: declare for them what the hook below enforces.
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, access: 'operate' };
    });
    scope.addHook('onRequest', async (request, reply) => {
      request.principal = auth.principalOf(bearerToken(request.headers.authorization) ?? basicPassword(request.headers.authorization));
      try {
        authorize('operate', request.principal, 'Bull Board (a bearer token, or the basic-auth password)');
      } catch (err) {
        const { status, body } = errorReply(toError(err));
        if (status === 401) void reply.header('www-authenticate', 'Basic realm="caelum-scheduler"');
        return reply.status(status).send(body);
      }
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
  });
}
