// Bearer tokens with names and scopes (src/config/tokens.ts). Each route declares in its config
// which scopes may call it; one hook enforces that, and names the token on the request so that
// every change records who made it. Every route of the app must declare its access: an app with
// one that does not fails to start (fail closed), rather than defaulting to some scope.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { effectiveScopes, SCOPES, type Scope, type TokenEntry } from '../config/tokens.js';
import { ForbiddenError, UnauthorizedError } from '../errors.js';

/** `public`, or the scopes of which a token needs one (a scope that includes one counts too). */
export type Access = 'public' | Scope | readonly Scope[];

/** Any valid token, whatever its scopes. */
export const ANY_TOKEN: readonly Scope[] = SCOPES;

export interface Principal {
  /** The token's name: what the service records as who did something. */
  name: string;
  /** Its scopes with those they include (operate: all of them). */
  scopes: readonly Scope[];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** The tokens the API accepts, compared by digest in constant time. */
export class Authenticator {
  private readonly entries: { name: string; scopes: readonly Scope[]; digest: Buffer }[];

  constructor(tokens: readonly TokenEntry[]) {
    this.entries = tokens.map((t) => ({ name: t.name, scopes: effectiveScopes(t.scopes), digest: Buffer.from(t.hash.slice('sha256:'.length), 'hex') }));
  }

  /** The token's holder, or undefined. Every digest is compared, so the time says nothing of which matched. */
  principalOf(token: string | undefined): Principal | undefined {
    if (!token) return undefined;
    const digest = createHash('sha256').update(token, 'utf8').digest();
    let found: Principal | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(digest, e.digest) && !found) found = { name: e.name, scopes: e.scopes };
    }
    return found;
  }
}

export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** Password of an HTTP basic header; the user name is ignored (browsers insist on one). */
export function basicPassword(header: string | undefined): string | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : undefined;
}

/** The scopes of which a token needs one for this access level: those it names and those that include them. */
export function grantingScopes(access: Exclude<Access, 'public'>): Scope[] {
  const wanted: readonly Scope[] = typeof access === 'string' ? [access] : access;
  return SCOPES.filter((s) => effectiveScopes([s]).some((x) => wanted.includes(x)));
}

const list = (scopes: readonly Scope[]) => scopes.join(', ');

/** Throws 401 without a valid token, 403 when its scopes do not cover the access; the bodies name the scopes. */
export function authorize(access: Access, principal: Principal | undefined, what: string): void {
  if (access === 'public') return;
  const granting = grantingScopes(access);
  if (!principal) {
    throw new UnauthorizedError(`${what} needs a valid bearer token (Authorization: Bearer <token>) with one of the scopes ${list(granting)}`, granting);
  }
  if (!granting.some((s) => principal.scopes.includes(s))) {
    throw new ForbiddenError(`${what} needs one of the scopes ${list(granting)}; the token "${principal.name}" has ${list(principal.scopes)}`, granting, principal);
  }
}

/** The name of the token that made a request, for the records of what it changed. */
export function actorOf(request: FastifyRequest): string {
  if (!request.principal) throw new Error(`${request.method} ${request.url} changed something without a named token`);
  return request.principal.name;
}

export interface RouteAccess {
  method: string;
  url: string;
  access: Access;
}

/**
 * Call on the root before any route: records every route, and makes `ready()` fail when one
 * declares no access. Returns the table (complete once the app is ready).
 */
export function trackRouteAccess(app: FastifyInstance): () => RouteAccess[] {
  const routes: RouteOptions[] = [];
  // Read at ready, not here: a plugin's own onRoute hook (Bull Board's scope) may set it after this one ran.
  app.addHook('onRoute', (route: RouteOptions) => void routes.push(route));
  const table = () =>
    routes.flatMap((r) => (Array.isArray(r.method) ? r.method : [r.method]).map((method) => ({ method: String(method), url: r.url, access: r.config?.access as Access })));
  app.addHook('onReady', async () => {
    const missing = table().filter((r) => r.access === undefined);
    if (missing.length > 0) {
      throw new Error(`routes without a declared access (config.access: 'public' or its scopes): ${missing.map((r) => `${r.method} ${r.url}`).join(', ')}`);
    }
  });
  return table;
}

/** Checks every request of a scope of the app (the /api routes) against its route's access. */
export function checkAccess(app: FastifyInstance, auth: Authenticator): void {
  app.addHook('onRequest', async (request: FastifyRequest, _reply: FastifyReply) => {
    const access = request.routeOptions.config.access ?? 'operate';
    request.principal = auth.principalOf(bearerToken(request.headers.authorization));
    authorize(access, request.principal, `${request.method} ${request.routeOptions.url ?? request.url}`);
  });
}
