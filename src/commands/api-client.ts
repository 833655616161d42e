// The CLI's client of the HTTP API: the CLI works from any machine that can reach the API, with
// the URL and token from flags or the environment.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ValidationError } from '../errors.js';

/** Waits between the tries of an idempotent POST: about 15 s in all, a Redis failover's length. */
export const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000, 4000, 4000];

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ApiClientOptions {
  url: string;
  token: string | undefined;
  /** Where the token came from (a flag or a variable), to say what to change when it is refused. */
  tokenFrom?: string;
}

/** What a person at the CLI does about a refused token. */
function credentialHint(status: number, opts: ApiClientOptions, base: string): string {
  const from = opts.tokenFrom ?? 'the token';
  if (status === 401) {
    return `\n  the API at ${base} did not accept the token from ${from}: set CAELUM_API_TOKEN (or pass --token) to the operator token the server was started with (dev and demo print it)`;
  }
  if (status === 403) {
    return `\n  the token from ${from} lacks that scope: set CAELUM_API_TOKEN (or pass --token) to a token that has it`;
  }
  return '';
}

export function apiClient(opts: ApiClientOptions) {
  const base = opts.url.replace(/\/+$/, '');
  async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    if (!opts.token) {
      throw new ValidationError('no API token: pass --token or set CAELUM_API_TOKEN (or CAELUM_READ_TOKEN to read)');
    }
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${opts.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new ApiError(0, `cannot reach the API at ${base}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const text = await res.text();
    const json = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok) {
      const e = json as { message?: string; details?: { path: string; message: string }[] } | undefined;
      const details = e?.details?.map((d) => `\n  ${d.path || '(body)'}: ${d.message}`).join('') ?? '';
      throw new ApiError(res.status, `${res.status} ${e?.message ?? res.statusText}${details}${credentialHint(res.status, opts, base)}`);
    }
    return json as T;
  }
  return {
    get: <T>(path: string) => call<T>('GET', path),
    post: <T>(path: string, body: unknown = {}) => call<T>('POST', path, body),
    /**
     * A POST under one Idempotency-Key, tried again while the API is unreachable or answers 503
     * (Redis away, or a replica not confirming): every try names the same request, so however
     * many reach the server, one job results.
     */
    async postIdempotent<T>(path: string, body: unknown, onRetry?: (err: ApiError, delayMs: number) => void, delays: readonly number[] = RETRY_DELAYS_MS): Promise<T> {
      const key = randomUUID();
      for (let attempt = 0; ; attempt++) {
        try {
          return await call<T>('POST', path, body, { 'idempotency-key': key });
        } catch (err) {
          const retriable = err instanceof ApiError && (err.status === 503 || err.status === 0);
          if (!retriable || attempt >= delays.length) throw err;
          onRetry?.(err, delays[attempt]!);
          await sleep(delays[attempt]);
        }
      }
    },
  };
}

export type ApiClient = ReturnType<typeof apiClient>;
