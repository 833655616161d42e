// The child side of the protocol: one JSON object a line on stdout with an `event` field.
import readline from 'node:readline';

// The warm job being served ({id, payload}), or null in a cold process: see serve().
let current = null;

const write = (record) => process.stdout.write(JSON.stringify(record) + '\n');

export function emit(event, fields = {}) {
  if (!current) return write({ event, ...fields });
  if ('job' in fields) throw new Error("field 'job' is taken: a warm runner tags every event with its job's id");
  return write({ event, ...fields, job: current.id });
}

/** The job's payload, as the worker hands it over (data, never flags). */
export function payload() {
  if (current) return current.payload;
  try {
    return JSON.parse(process.env.CAELUM_PAYLOAD ?? '{}');
  } catch {
    return {};
  }
}

/** --name value flags from the config's argument array. */
export function flags(argv = process.argv.slice(2)) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) out[a.slice(2)] = true;
      else out[a.slice(2)] = argv[++i];
    }
  }
  return out;
}

/** A small deterministic PRNG, so a symbol's synthetic bars are the same on every host. */
export function rng(seedText) {
  let h = 2166136261;
  for (const c of String(seedText)) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  let s = h >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 2246822507) + 0x6d2b79f5) >>> 0;
    return s / 4294967296;
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A failure the job expects (no data for a symbol): reported by its message alone, no stack. */
export class JobFailure extends Error {
  name = 'JobFailure';
}

const report = (err) => console.error(err instanceof JobFailure ? err.message : (err?.stack ?? String(err)));

/**
 * Runs `handler(payload)` for the job however the worker started this program (README, "Warm
 * runners"). Cold: once; a throw prints it and exits 1. Warm (CAELUM_RUNNER=warm): for each job
 * line on stdin, with the job's `env` in process.env (the previous values put back after), its
 * events tagged with its id, then `done`; a throw fails that job only. End of input returns; a
 * line that is not a job exits 2, since the worker sends only whole jobs.
 */
export async function serve(handler) {
  if (process.env.CAELUM_RUNNER !== 'warm') {
    try {
      await handler(payload());
    } catch (err) {
      report(err);
      process.exit(1);
    }
    return;
  }
  for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    const job = parseJob(line);
    let error;
    const previous = Object.fromEntries(Object.keys(job.env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, job.env);
    current = { id: job.job, payload: job.payload };
    try {
      await handler(job.payload);
    } catch (err) {
      report(err);
      error = err instanceof JobFailure ? err.message : String(err);
    } finally {
      current = null;
      for (const [k, v] of Object.entries(previous)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    write(error === undefined ? { event: 'done', job: job.job, ok: true } : { event: 'done', job: job.job, ok: false, error });
  }
}

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJob(line) {
  let value;
  try {
    value = JSON.parse(line);
  } catch (err) {
    malformed(`not JSON (${err.message})`, line);
  }
  const env = value?.env ?? {};
  if (!isObject(value)) malformed('not a JSON object', line);
  if (typeof value.job !== 'string' || !value.job) malformed('no job id ("job" must be a non-empty string)', line);
  if (!isObject(value.payload)) malformed('"payload" must be an object', line);
  if (!isObject(env) || !Object.entries(env).every(([k, v]) => k && !k.includes('=') && typeof v === 'string')) {
    malformed('"env" must map variable names to strings', line);
  }
  return { job: value.job, payload: value.payload, env };
}

function malformed(problem, line) {
  console.error(`serve: a line on standard input is not a job: ${problem}: ${JSON.stringify(line.slice(0, 200))}`);
  process.exit(2);
}
