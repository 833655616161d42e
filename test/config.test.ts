import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEnv } from '../src/config/env.js';
import { gpuHealthOf } from '../src/config/gpu-health-schema.js';
import { loadFleet, parseFleet } from '../src/config/load-fleet.js';
import { eventsOf, NOTIFICATION_EVENTS, resolveNotificationSecrets } from '../src/config/notifications-schema.js';
import { ConfigError } from '../src/errors.js';
import { problemsOf } from './helpers/config-problems.js';
import { placeJob, queuesForHost, queueSpecs } from '../src/queues/placement.js';
import { REPO_ROOT, testFleetInput } from './helpers/fleet.js';

const input = testFleetInput;
const parse = (value: unknown) => parseFleet(value, '(test)', REPO_ROOT);

describe('environment', () => {
  it('applies defaults and reads every variable', () => {
    const env = parseEnv({ PORT: '8080', CAELUM_HOST: 'gpu-22', CAELUM_API_TOKEN: 'a'.repeat(20), LOG_LEVEL: 'debug' });
    expect(env).toMatchObject({ port: 8080, host: 'gpu-22', hostIsExplicit: true, apiToken: 'a'.repeat(20), logLevel: 'debug', prefix: 'caelum' });
    expect(env.redis).toBeUndefined();
    expect(parseEnv({}).host).toBe(os.hostname());
  });

  it('names the variable that is wrong', () => {
    expect(() => parseEnv({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => parseEnv({ REDIS_URL: 'http://x' })).toThrow(/REDIS_URL: must be a redis/);
    expect(() => parseEnv({ CAELUM_API_TOKEN: 'short' })).toThrow(/CAELUM_API_TOKEN: must be at least 16/);
    expect(() => parseEnv({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
    const same = 'b'.repeat(20);
    expect(() => parseEnv({ CAELUM_API_TOKEN: same, CAELUM_READ_TOKEN: same })).toThrow(/CAELUM_READ_TOKEN: must differ/);
  });
});

describe('the shipped workers.config.ts', () => {
  it('loads and describes the fleet of the source documents', async () => {
    const fleet = await loadFleet('workers.config.ts', REPO_ROOT);
    expect(Object.keys(fleet.hosts).sort()).toEqual(['gpu-22', 'gpu-44', 'gpu-62', 'wsl-27']);
    for (const host of Object.values(fleet.hosts)) expect(host.gpus).toHaveLength(1);
    expect(queuesForHost(fleet, 'gpu-22').map((q) => q.name)).toContain('training-llm3-yieldmax');
    expect(queuesForHost(fleet, 'gpu-62').map((q) => q.name)).not.toContain('training-llm3-yieldmax');
    expect(placeJob(fleet, 'training', { model: 'llm1-tech' }).pool).toBe('llm1');
    expect(fleet.pools.llm1).toEqual(['wsl-27', 'gpu-62']);
    expect(fleet.pools[placeJob(fleet, 'training', { model: 'llm5-volatility' }).pool]).toEqual(['gpu-44']);
    expect(fleet.schedules['llm1-tech-daily']?.cron).toBeDefined();
    expect(fleet.schedules['llm5-volatility-on-demand']?.cron).toBeUndefined();
    // Every host serves backtests and data syncs.
    for (const host of Object.keys(fleet.hosts)) {
      expect(queuesForHost(fleet, host).map((q) => q.name)).toEqual(expect.arrayContaining(['backtest', 'data-sync']));
    }
    // Paths are resolved against the config file's folder.
    expect(fleet.models['llm1-tech']!.checkpointDir).toBe(path.join(REPO_ROOT, 'var/checkpoints/llm1-tech'));
  });
});

describe('bad fleets are refused with the path and the problem', () => {
  it('an unknown pool', () => {
    const bad = input();
    bad.models['model-b']!.pool = 'gpu2';
    expect(problemsOf(() => parse(bad))).toEqual(['models.model-b.pool: unknown pool "gpu2"']);
  });

  it('a model that needs more GPUs than any host of its pool has', () => {
    const bad = input();
    bad.models['model-b']!.gpusPerRun = 2;
    expect(problemsOf(() => parse(bad))).toEqual([
      'models.model-b.gpusPerRun: needs 2 GPUs per run but no host of pool "beta" has more than 1',
    ]);
  });

  it('a pool naming an unknown host, and a duplicate GPU index', () => {
    const bad = input();
    bad.pools.beta = ['host-b', 'host-z'];
    bad.hosts['host-a']!.gpus = [
      { index: 0, name: 'x', memoryMiB: 1 },
      { index: 0, name: 'y', memoryMiB: 1 },
    ];
    expect(problemsOf(() => parse(bad))).toEqual([
      'hosts.host-a.gpus.1.index: duplicate GPU index 0',
      'pools.beta.1: unknown host "host-z"',
    ]);
  });

  it('a command given as a shell string', () => {
    const bad = input() as unknown as { models: Record<string, { train: { command: unknown } }> };
    bad.models['model-a']!.train.command = 'python train.py --epochs 5';
    const problems = problemsOf(() => parse(bad));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^models\.model-a\.train\.command: /);
  });

  it('an unknown field and a bad name', () => {
    const bad = { ...input(), extra: 1 } as Record<string, unknown>;
    (bad.hosts as Record<string, unknown>)['Host_C'] = { gpus: [] };
    const problems = problemsOf(() => parse(bad));
    expect(problems).toContain('extra: unknown field');
    expect(problems.some((p) => p.startsWith('hosts.Host_C: ') && p.includes('lower-case'))).toBe(true);
  });

  it('a cron expression that does not parse, a time zone that does not exist, an unknown model', () => {
    const bad = input({
      schedules: {
        broken: { cron: '61 * * * *', timezone: 'UTC', enqueue: { kind: 'training', model: 'model-a' } },
        lost: { cron: '0 2 * * *', timezone: 'Mars/Olympus', enqueue: { kind: 'training', model: 'model-z' } },
      },
    });
    const problems = problemsOf(() => parse(bad));
    expect(problems[0]).toMatch(/^schedules\.broken\.cron: cannot parse "61 \* \* \* \*"/);
    expect(problems).toContain('schedules.lost.timezone: unknown time zone "Mars/Olympus"');
    expect(problems).toContain('schedules.lost.enqueue.model: unknown model "model-z"');
  });

  it('GPU health settings out of range, a relative kernel log, an unknown field, fleet-wide or per host', () => {
    const bad = input({ gpuHealth: { maxTemperatureC: 200, kernelLog: 'var/log/kern.log', xidHoldSeconds: 1.5, extra: 1 } as never });
    bad.hosts['host-a']!.gpuHealth = { temperatureHysteresisC: 50 };
    expect(problemsOf(() => parse(bad))).toEqual([
      'hosts.host-a.gpuHealth.temperatureHysteresisC: must be at most 20 °C',
      'gpuHealth.maxTemperatureC: must be at most 110 °C',
      'gpuHealth.kernelLog: must be an absolute path such as /var/log/kern.log',
      'gpuHealth.xidHoldSeconds: must be whole seconds',
      'gpuHealth.extra: unknown field',
    ]);
  });

  it('notification targets: a bad URL, an unknown event, an empty or short secret, none or both, a bad name', () => {
    const secret = 'a-webhook-secret-of-some-length';
    const bad = input({
      notifications: {
        targets: {
          slack: { url: 'ftp://hooks.example', events: ['job.failed', 'job.exploded'], secret: '' },
          short: { url: 'https://hooks.example/x', secret: 'tiny' },
          none: { url: 'https://hooks.example/y' },
          both: { url: 'https://hooks.example/z', secret, secretEnv: 'HOOK_SECRET' },
          env: { url: 'not a url', secretEnv: 'lower-case', events: [] },
          Upper: { url: 'https://hooks.example/u', secret },
        },
        backoffSeconds: -1,
      },
    });
    expect(problemsOf(() => parse(bad))).toEqual([
      'notifications.targets.slack.url: must be an http:// or https:// URL',
      `notifications.targets.slack.events.1: unknown event "job.exploded"; one of ${NOTIFICATION_EVENTS.join(', ')}, or "*"`,
      'notifications.targets.slack.secret: must not be empty',
      'notifications.targets.short.secret: must be at least 16 characters',
      'notifications.targets.none.secret: required: set secret or secretEnv',
      'notifications.targets.both.secretEnv: set secret or secretEnv, not both',
      'notifications.targets.env.url: must be an http:// or https:// URL',
      'notifications.targets.env.events: name at least one event, or "*"',
      'notifications.targets.env.secretEnv: must be an environment variable name such as CAELUM_WEBHOOK_SECRET',
      'notifications.targets.Upper: a target name must be lower-case letters, digits and dashes',
      'notifications.backoffSeconds: Too small: expected number to be >=0',
    ]);
  });

  it('a file that does not exist, or has no default export', async () => {
    await expect(loadFleet('nope.config.ts', REPO_ROOT)).rejects.toThrow(/file not found/);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-config-'));
    writeFileSync(path.join(dir, 'empty.config.mjs'), 'export const x = 1;\n');
    await expect(loadFleet(path.join(dir, 'empty.config.mjs'))).rejects.toThrow(/no default export/);
  });
});

describe('GPU health settings', () => {
  it('default for the fleet, and a host overrides only what it sets', () => {
    const fleet = parse(input({ gpuHealth: { kernelLog: '/var/log/kern.log' } }));
    fleet.hosts['host-b']!.gpuHealth = { maxTemperatureC: 80, kernelLog: '/var/log/messages' };
    expect(gpuHealthOf(fleet, 'host-a')).toEqual({ maxTemperatureC: 85, temperatureHysteresisC: 5, kernelLog: '/var/log/kern.log', xidHoldSeconds: 600, ignoreXids: [13, 31, 43, 45] });
    expect(gpuHealthOf(fleet, 'host-b')).toMatchObject({ maxTemperatureC: 80, temperatureHysteresisC: 5, kernelLog: '/var/log/messages', xidHoldSeconds: 600 });
    expect(parse(input()).gpuHealth.kernelLog).toBeUndefined();
  });
});

describe('notification secrets', () => {
  const fleet = parse(
    input({
      notifications: {
        targets: {
          inline: { url: 'https://hooks.example/a', secret: 'inline-secret-0123456789', events: ['checkpoint.promoted'] },
          env: { url: 'https://hooks.example/b', secretEnv: 'HOOK_SECRET' },
        },
      },
    }),
  );

  it('parse without the environment (workers never need them) and default to every event', () => {
    expect(fleet.notifications).toMatchObject({ attempts: 10, backoffSeconds: 5, checkEverySeconds: 5 });
    expect([...eventsOf(fleet.notifications.targets.env!)]).toEqual([...NOTIFICATION_EVENTS]);
    expect([...eventsOf(fleet.notifications.targets.inline!)]).toEqual(['checkpoint.promoted']);
    expect(parse(input()).notifications.targets).toEqual({});
  });

  it('come from the file or the variable named, which must be set and long enough', () => {
    const secrets = resolveNotificationSecrets(fleet.notifications, { HOOK_SECRET: 'from-the-environment-0123' }, 'cfg');
    expect(Object.fromEntries(secrets)).toEqual({ inline: 'inline-secret-0123456789', env: 'from-the-environment-0123' });
    const problems = (env: Record<string, string>) => problemsOf(() => resolveNotificationSecrets(fleet.notifications, env, 'cfg'));
    expect(problems({})).toEqual(['notifications.targets.env.secretEnv: environment variable HOOK_SECRET is not set']);
    expect(problems({ HOOK_SECRET: '' })).toEqual(['notifications.targets.env.secretEnv: environment variable HOOK_SECRET is not set']);
    expect(problems({ HOOK_SECRET: 'short' })).toEqual(['notifications.targets.env.secretEnv: HOOK_SECRET: must be at least 16 characters']);
  });
});

describe('placement', () => {
  const fleet = parse(input());

  it('gives training and deploy tests a queue per model, backtests and data syncs one each', () => {
    expect(queueSpecs(fleet).map((q) => q.name)).toEqual([
      'training-model-a',
      'deploy-test-model-a',
      'training-model-b',
      'deploy-test-model-b',
      'backtest',
      'data-sync',
    ]);
    expect(placeJob(fleet, 'training', { model: 'model-a' })).toMatchObject({ pool: 'alpha', gpus: 2 });
    expect(placeJob(fleet, 'backtest', { model: 'model-a' })).toMatchObject({ name: 'backtest', gpus: 0 });
  });

  it('gives a host only the queues of its pools', () => {
    expect(queuesForHost(fleet, 'host-b').map((q) => q.name)).toEqual([
      'training-model-b',
      'deploy-test-model-b',
      'backtest',
      'data-sync',
    ]);
  });

  it('refuses an unknown model', () => {
    expect(() => placeJob(fleet, 'training', { model: 'gpt' })).toThrow(/unknown model "gpt"/);
  });
});
