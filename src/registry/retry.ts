// Retrying work against Postgres while it is briefly away. A connection problem is retried; a
// real SQL error (a constraint, a bug) is not, since retrying would only repeat it.
import type { Logger } from '../logger.js';

const SQLSTATE = /^[0-9A-Z]{5}$/;
// 08: connection exception; 57P: operator intervention (shutdown); 53: insufficient resources.
const TRANSIENT_CLASSES = ['08', '57', '53'];

export function isTransientDbError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && SQLSTATE.test(code)) return TRANSIENT_CLASSES.includes(code.slice(0, 2));
  // A bug in the caller (a query the driver cannot even send) stays a bug.
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError || err instanceof ReferenceError) return false;
  // No SQLSTATE: the server could not be reached or the socket broke (ECONNREFUSED, a pool
  // connect timeout, "Connection terminated").
  return true;
}

export async function retryTransient<T>(
  what: string,
  fn: () => Promise<T>,
  opts: { signal: AbortSignal; logger: Logger; maxMs: number },
): Promise<T> {
  const started = Date.now();
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientDbError(err) || opts.signal.aborted || Date.now() - started > opts.maxMs) throw err;
      opts.logger.warn({ err, attempt, retryInMs: delay }, `${what} failed; Postgres looks unreachable, retrying`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        opts.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
      delay = Math.min(delay * 2, 10_000);
    }
  }
}
