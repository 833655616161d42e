// GET /api/health: liveness for load balancers and container health checks. It is the one /api
// route that needs no token: it tells only whether Redis and Postgres answer.
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { probePostgres, probeRedis } from '../../health.js';

export interface HealthDeps {
  redis: Redis;
  pool: pg.Pool;
}

export async function healthRoutes(app: FastifyInstance, deps: HealthDeps): Promise<void> {
  app.get('/api/health', { config: { access: 'public' } }, async (_request, reply) => {
    const [redis, postgres] = await Promise.all([probeRedis(deps.redis), probePostgres(deps.pool)]);
    const down = [!redis.ok && 'redis', !postgres.ok && 'postgres'].filter(Boolean);
    return reply.status(down.length ? 503 : 200).send({
      status: down.length ? 'down' : 'ok',
      ...(down.length ? { down } : {}),
      redis,
      postgres,
    });
  });
}
