// The environment a job's child starts from: the worker's own, without the service's secrets.
// A trainer has no business with the API tokens or the database and Redis credentials (nor with
// where their files are: the *_FILE variables); the worker adds the job's own variables
// (CAELUM_JOB_ID, CUDA_VISIBLE_DEVICES, …) on top.
const SECRET = /^(CAELUM_|DATABASE_|REDIS_|PG[A-Z_]*$)/;

export function childBaseEnv(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string' && !SECRET.test(e[0])));
}
