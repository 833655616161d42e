// The child side of the protocol: one JSON object a line on stdout with an `event` field.
export const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');

/** The job's payload, as the worker hands it over (data, never flags). */
export function payload() {
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
