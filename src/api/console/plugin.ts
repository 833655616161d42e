// The operator's console at /ui: a few static files (public/) and the UI library's modules
// (/ui/vendor/), served from memory. The pages hold no data and need no token; everything they
// show they read from the public /api routes with the token the operator signs in with.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NotFoundError } from '../../errors.js';
import type { Asset, ConsoleAssets } from './assets.js';

export const CONSOLE_PATH = '/ui';

/** The inline import map's hash, so the page's CSP allows that one script and no other inline one. */
function importMapHash(html: string): string {
  const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)?.[1];
  if (map === undefined) throw new Error('console: index.html has no import map');
  return `'sha256-${createHash('sha256').update(map).digest('base64')}'`;
}

export async function consoleRoutes(app: FastifyInstance, assets: ConsoleAssets): Promise<void> {
  const index = assets.files.get('index.html')!;
  const csp = [
    "default-src 'none'",
    `script-src 'self' ${importMapHash(index.body.toString('utf8'))}`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');

  const send = (request: FastifyRequest, reply: FastifyReply, file: Asset | undefined) => {
    if (!file) throw new NotFoundError(`no console file ${request.url.split('?')[0]}`);
    // Revalidated on every load (a cheap 304), so an upgraded API never serves a stale page.
    void reply.header('cache-control', 'no-cache').header('etag', file.etag).header('x-content-type-options', 'nosniff');
    if (request.headers['if-none-match'] === file.etag) return reply.status(304).send();
    if (file === index) void reply.header('content-security-policy', csp).header('referrer-policy', 'no-referrer');
    return reply.type(file.type).send(file.body);
  };

  // Relative links in the page resolve against /ui/, not /; relative too, so a proxy's path prefix stays.
  // The console's own files are public, like a login page: it signs in to the API's routes.
  const open = { config: { access: 'public' as const } };
  app.get(CONSOLE_PATH, open, async (_request, reply) => reply.redirect('ui/'));
  app.get(`${CONSOLE_PATH}/`, open, async (request, reply) => send(request, reply, index));
  app.get<{ Params: { file: string } }>(`${CONSOLE_PATH}/:file`, open, async (request, reply) => send(request, reply, assets.files.get(request.params.file)));
  app.get<{ Params: { file: string } }>(`${CONSOLE_PATH}/vendor/:file`, open, async (request, reply) => send(request, reply, assets.vendor.get(request.params.file)));
}
