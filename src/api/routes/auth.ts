// GET /api/auth/me: which token the caller holds and what it may do, so a console can show only
// the actions its token allows. `principal` repeats the name for clients of the first version.
import type { FastifyInstance } from 'fastify';
import { actorOf, ANY_TOKEN } from '../auth.js';

export async function authRoutes(app: FastifyInstance): Promise<void> {
  app.get('/api/auth/me', { config: { access: ANY_TOKEN } }, async (request) => {
    const name = actorOf(request);
    return { name, principal: name, scopes: request.principal!.scopes };
  });
}
