// Validation and deploy tests of a checkpoint. The model's `validation` decides how: run its
// validate command, or deploy-test the candidate service (start it on a free port with the
// checkpoint, wait until healthy, run the accuracy check against it, stop it). Either way the
// run is one deployment_history row. The verdict, and for a checkpoint still awaiting one every
// status change that follows, are the checkpoint lifecycle's (src/checkpoints/lifecycle.ts).
// Nothing runs on a checkpoint whose file is no longer what was registered: it is rejected (or,
// promoted, the job fails) with the reason.
import { UnrecoverableError } from 'bullmq';
import type { CommandConfig, DeployTestConfig } from '../../config/fleet-schema.js';
import { toError } from '../../errors.js';
import { freePort } from '../../net.js';
import type { PayloadOf } from '../../queues/payloads.js';
import { awaitsVerdict } from '../../checkpoints/transitions.js';
import { JobStopped, type JobContext, type Processor } from '../job-context.js';
import type { ProtocolEvent } from '../protocol.js';
import { lifecycleFor } from './lifecycle-for.js';

function metricsOf(events: ProtocolEvent[]): Record<string, unknown> {
  const result = [...events].reverse().find((e) => e.event === 'result');
  return (result?.metrics as Record<string, unknown> | undefined) ?? {};
}

async function runValidation(ctx: JobContext, command: CommandConfig, env: Record<string, string>, notes: string[]) {
  const { events } = await ctx.run(command, env);
  notes.push('validate command exited 0');
  return metricsOf(events);
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/** Health checks as Docker does them: failures in the start period do not count; then `retries`. */
async function waitHealthy(url: string, cfg: DeployTestConfig['health'], exited: Promise<unknown>, signal: AbortSignal, notes: string[]) {
  let gone = false;
  void exited.then(() => (gone = true));
  const startUntil = Date.now() + cfg.startPeriodSeconds * 1000;
  let failures = 0;
  for (let check = 1; ; check++) {
    if (signal.aborted) throw new JobStopped('stopped');
    if (gone) throw new Error(`the candidate service exited before it became healthy (${notes.length} checks)`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(cfg.timeoutSeconds * 1000) });
      if (res.ok) {
        notes.push(`health check ${check}: ${res.status}`);
        return;
      }
      notes.push(`health check ${check}: ${res.status}`);
    } catch (err) {
      notes.push(`health check ${check}: ${toError(err).message}`);
    }
    if (Date.now() >= startUntil && ++failures > cfg.retries) {
      throw new Error(`the candidate service was not healthy at ${url} after ${cfg.retries} retries`);
    }
    await sleep(cfg.intervalSeconds * 1000, signal);
  }
}

async function runDeployTest(ctx: JobContext, cfg: DeployTestConfig, env: Record<string, string>, notes: string[]) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const service = ctx.startService(cfg.service, { ...env, CAELUM_TEST_PORT: String(port) });
  try {
    await waitHealthy(`${base}${cfg.service.healthPath}`, cfg.health, service.done, ctx.signal, notes);
    const { events } = await ctx.run(cfg.accuracy, { ...env, CAELUM_SERVICE_URL: base });
    notes.push('accuracy check exited 0');
    return { ...metricsOf(events), health: 1 };
  } finally {
    await service.stop();
  }
}

export const deployTest: Processor = async (ctx) => {
  const payload = ctx.job.data.payload as PayloadOf<'deploy-test'>;
  const modelName = ctx.spec.model!;
  const model = ctx.fleet.models[modelName]!;
  const { checkpoints, deployments } = ctx.registry;
  const lifecycle = lifecycleFor(ctx);
  const actor = `worker ${ctx.hostId} (job ${ctx.job.id})`;

  const checkpoint = payload.checkpoint !== undefined ? await checkpoints.get(payload.checkpoint) : await checkpoints.promoted(modelName);
  if (!checkpoint) {
    throw new UnrecoverableError(
      payload.checkpoint !== undefined ? `no checkpoint ${payload.checkpoint}` : `model ${modelName} has no promoted checkpoint to test`,
    );
  }
  if (checkpoint.model !== modelName) throw new UnrecoverableError(`checkpoint ${checkpoint.id} belongs to ${checkpoint.model}, not ${modelName}`);
  if (checkpoint.prunedAt) throw new UnrecoverableError(`checkpoint ${checkpoint.id} was pruned`);
  const deciding = awaitsVerdict(checkpoint.status);
  const current = deciding ? await lifecycle.startValidation(checkpoint.id, actor) : checkpoint;

  const action = model.validation === 'deploy-test' ? 'deploy-test' : 'validate';
  const deploymentId = await deployments.start({
    jobId: ctx.job.id!,
    attempt: ctx.job.attemptsMade + 1,
    service: payload.service,
    model: modelName,
    checkpointId: checkpoint.id,
    version: payload.version ?? checkpoint.label,
    action,
    host: ctx.hostId,
  });
  const env = {
    CAELUM_CHECKPOINT_ID: String(checkpoint.id),
    CAELUM_CHECKPOINT_PATH: checkpoint.path,
    CAELUM_CHECKPOINT_LABEL: checkpoint.label,
  };
  const mismatch = await lifecycle.checkFile(current, actor);
  if (mismatch) {
    await deployments.finish(deploymentId, { status: 'error', reasons: [mismatch], logs: '' });
    const status = (await checkpoints.get(checkpoint.id))?.status;
    if (status !== 'rejected') throw new UnrecoverableError(mismatch);
    ctx.log.warn({ checkpoint: checkpoint.id, reason: mismatch }, 'checkpoint rejected: its file changed');
    return { checkpoint: checkpoint.id, label: checkpoint.label, action, passed: false, reasons: [mismatch], status, deployment: deploymentId };
  }
  const notes: string[] = [];
  let metrics: Record<string, unknown>;
  try {
    metrics =
      action === 'validate'
        ? await runValidation(ctx, model.validate, env, notes)
        : await runDeployTest(ctx, model.deployTest!, env, notes);
  } catch (err) {
    const message = toError(err).message;
    await deployments.finish(deploymentId, { status: 'error', reasons: [message], logs: notes.join('\n') });
    const lastAttempt = ctx.job.attemptsMade + 1 >= (ctx.job.opts.attempts ?? 1);
    if (!(err instanceof JobStopped) && lastAttempt && deciding) {
      await lifecycle.decide(checkpoint.id, { passed: false, metrics: {}, reasons: [`${action} could not run: ${message}`], actor });
    }
    throw err;
  }

  const { baseline, ...verdict } = await lifecycle.judge(checkpoint, metrics);
  await deployments.finish(deploymentId, {
    status: verdict.passed ? 'passed' : 'failed',
    metrics,
    reasons: verdict.reasons,
    logs: notes.join('\n'),
  });

  let final = checkpoint;
  if (deciding) {
    const decided = await lifecycle.decide(checkpoint.id, { ...verdict, metrics, actor });
    final = await lifecycle.afterVerdict(decided, { actor, trigger: ctx.job.data.trigger });
  }
  ctx.log.info({ checkpoint: checkpoint.id, status: final.status, reasons: verdict.reasons }, `${action} finished`);
  return {
    checkpoint: checkpoint.id,
    label: checkpoint.label,
    action,
    passed: verdict.passed,
    reasons: verdict.reasons,
    status: final.status,
    metrics,
    baseline: baseline ?? null,
    deployment: deploymentId,
  };
};
