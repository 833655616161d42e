// Two bearer tokens: the operator token may do anything, the read token (FinColl's) may only
// read. Each route declares what it needs in its config; one hook enforces it.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError } from '../errors.js';

export type Access = 'public' | 'read' | 'operate';
export type Principal = 'operator' | 'reader';
/** What a token may do: `read` every GET route, `operate` every route that changes state. */
export type Scope = 'read' | 'operate';

const SCOPES: Record<Principal, Scope[]> = { operator: ['read', 'operate'], reader: ['read'] };
export const scopesOf = (principal: Principal): Scope[] => [...SCOPES[principal]];

export interface Tokens {
  operator: string;
  read?: string | undefined;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function principalOf(token: string | undefined, tokens: Tokens): Principal | undefined {
  if (!token) return undefined;
  if (same(token, tokens.operator)) return 'operator';
  if (tokens.read && same(token, tokens.read)) return 'reader';
  return undefined;
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

export function authorize(access: Access, principal: Principal | undefined): void {
  if (access === 'public') return;
  if (!principal) throw new UnauthorizedError('a valid bearer token is required (Authorization: Bearer <token>)');
  if (access === 'operate' && principal !== 'operator') {
    throw new ForbiddenError('this route needs the operator token; the read token may only read');
  }
}

/** onRequest hook for /api: routes without an explicit access level need the operator token. */
export function apiAuthHook(tokens: Tokens) {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    const access = request.routeOptions.config.access ?? 'operate';
    request.principal = principalOf(bearerToken(request.headers.authorization), tokens);
    authorize(access, request.principal);
  };
}
