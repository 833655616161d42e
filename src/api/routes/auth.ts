// GET /api/auth/me: who the token is and what it may do, so a client (the console) can disable an
// action the token may not take instead of letting it fail. Clients read `scopes`: a later token
// scheme adds names and finer scopes without changing what a scope means.
import type { FastifyInstance } from 'fastify';
import { scopesOf } from '../auth.js';

export async function authRoutes(app: FastifyInstance): Promise<void> {
  app.get('/api/auth/me', { config: { access: 'read' } }, async (request) => {
    // The read access check ran first, so a principal is there.
    const principal = request.principal!;
    return { principal, scopes: scopesOf(principal) };
  });
}
