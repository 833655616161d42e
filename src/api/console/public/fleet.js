// Fleet: every configured host with its live worker (or none: down), its GPUs and what holds
// them, its running jobs with progress, epoch and ETA, its drains and the GPUs it holds for a
// waiting job. Drain and undrain a host from here. Reads /api/workers and /api/system/health.
import { api } from './api.js';
import { html } from './html.js';
import { usePoll } from './live.js';
import { ActionButton, Badge, duration, ErrorNote, JobLink, Loading, Progress, Time, useConfirm } from './ui.js';

const POLL_MS = 2000;

/** What a GPU is doing, in words: a colour alone would not say it. */
function gpuState(g) {
  if (!g) return { kind: 'neutral', text: 'unknown: no worker' };
  if (g.jobId) return { kind: 'busy', text: 'busy' };
  if (g.unhealthy) return { kind: 'bad', text: `unhealthy: ${g.unhealthy.reasons.join('; ')}` };
  if (g.blockedBy) return { kind: 'warn', text: `blocked by pid ${g.blockedBy.pid} (${g.blockedBy.processName})` };
  if (g.drained) return { kind: 'warn', text: `drained: ${g.drained.reason}` };
  return { kind: 'good', text: 'free' };
}

/** Percent, epoch and ETA of a running job: the health route's for trainings, else what the job reported. */
function progressOf(job, training) {
  const p = job.progress && typeof job.progress === 'object' ? job.progress : {};
  return {
    percent: training?.percent ?? (typeof p.percent === 'number' ? p.percent : null),
    epoch: training?.epoch ?? p.epoch ?? null,
    epochs: training?.epochs ?? p.epochs ?? null,
    eta: training?.etaSeconds ?? p.etaSeconds ?? null,
  };
}

function RunningJob({ job, training }) {
  const { percent, epoch, epochs, eta } = progressOf(job, training);
  return html`<li class="running-job">
    <div><strong>${job.kind}${job.model ? ` ${job.model}` : ''}</strong> on ${job.gpus.length ? `GPU ${job.gpus.join(', ')}` : 'a CPU slot'} · started <${Time} iso=${job.startedAt} /></div>
    <${JobLink} id=${job.id} />
    <div class="job-progress">
      <${Progress} percent=${percent} label=${`progress of ${job.id}`} />
      <span>${epoch !== null ? `epoch ${epoch}${epochs ? `/${epochs}` : ''}` : ''}</span>
      <span>${eta !== null ? `ETA ${duration(eta)}` : ''}</span>
    </div>
  </li>`;
}

function Drains({ drains }) {
  if (!drains || (!drains.drained && drains.gpus.length === 0)) return null;
  return html`<ul class="drains">
    ${drains.drained ? html`<li><${Badge} kind="warn">host drained<//> ${drains.drained.reason} — by ${drains.drained.by}, <${Time} iso=${drains.drained.at} />${drains.drained.now ? ', running jobs handed back' : ''}</li>` : null}
    ${drains.gpus.map((d) => html`<li><${Badge} kind="warn">GPU ${d.gpu} drained<//> ${d.reason} — by ${d.by}, <${Time} iso=${d.at} /></li>`)}
  </ul>`;
}

function HostCard({ host, workers, drains, training, me, ask, refresh }) {
  const live = workers.length > 0;
  const w = workers[0];
  const gpus = host.gpus.map((g) => ({ ...g, live: w?.gpus.find((x) => x.index === g.index) }));
  const running = workers.flatMap((x) => x.running);
  const drained = Boolean(drains?.drained || drains?.gpus.length);
  const drain = () =>
    ask({
      title: `Drain ${host.id}`,
      confirmLabel: 'Drain',
      reasonRequired: true,
      children: html`<p>${host.id} starts no new job until it is undrained. Running jobs finish.</p>`,
      onConfirm: (reason) => api(`api/workers/${encodeURIComponent(host.id)}/drain`, { method: 'POST', body: { reason } }),
      onClose: refresh,
    });
  const undrain = () =>
    ask({
      title: `Undrain ${host.id}`,
      confirmLabel: 'Undrain',
      children: html`<p>Lift every drain of ${host.id}: it takes jobs again.</p>`,
      onConfirm: () => api(`api/workers/${encodeURIComponent(host.id)}/undrain`, { method: 'POST', body: {} }),
      onClose: refresh,
    });
  return html`<section class="card host" aria-labelledby=${`host-${host.id}`}>
    <h2 id=${`host-${host.id}`}>${host.id} ${live ? html`<${Badge} kind="good">live<//>` : html`<${Badge} kind="bad">down<//>`}</h2>
    <p class="meta">
      ${live
        ? html`heartbeat <${Time} iso=${w.at} /> · version ${w.version} · CPU slots ${w.cpuSlots.used}/${w.cpuSlots.total} used`
        : html`no worker has sent a heartbeat: its jobs wait until one starts`}
      ${host.pools.length ? html` · pools ${host.pools.join(', ')}` : ''}
      ${workers.length > 1 ? html` · ${workers.length} worker instances` : ''}
    </p>
    <${Drains} drains=${drains} />
    ${w?.reservation
      ? html`<p class="reservation"><${Badge} kind="busy">holding GPUs<//> for ${w.reservation.jobId ? html`<${JobLink} id=${w.reservation.jobId} />` : w.reservation.queue},
          expected to start ${w.reservation.expectedStartAt ? html`<${Time} iso=${w.reservation.expectedStartAt} />` : 'at an unknown time'}</p>`
      : null}
    ${gpus.length
      ? html`<table class="gpus">
          <caption class="sr-only">GPUs of ${host.id}</caption>
          <thead><tr><th scope="col">GPU</th><th scope="col">State</th><th scope="col">Job</th></tr></thead>
          <tbody>${gpus.map((g) => {
            const state = live ? gpuState(g.live) : gpuState(undefined);
            return html`<tr>
              <td data-label="GPU">${g.index} · ${g.name} <span class="muted nowrap">${Math.round(g.memoryMiB / 1024)} GiB</span></td>
              <td data-label="State"><${Badge} kind=${state.kind}>${state.text}<//></td>
              <td data-label="Job">${g.live?.jobId ? html`<code class="job-id">${g.live.jobId}</code>` : '—'}</td>
            </tr>`;
          })}</tbody>
        </table>`
      : html`<p class="muted">No GPUs: CPU jobs only.</p>`}
    ${running.length
      ? html`<h3>Running</h3><ul class="running">${running.map((job) => html`<${RunningJob} job=${job} training=${training.get(job.id)} />`)}</ul>`
      : live ? html`<p class="muted">Nothing running.</p>` : null}
    <div class="actions">
      <${ActionButton} me=${me} onClick=${drain}>Drain host…<//>
      ${drained ? html`<${ActionButton} me=${me} onClick=${undrain}>Undrain<//>` : null}
    </div>
  </section>`;
}

export function FleetPage({ me, fleet }) {
  const { data, error, refresh } = usePoll(async () => {
    const [workers, health] = await Promise.all([api('api/workers'), api('api/system/health')]);
    return { workers: workers.workers, health };
  }, POLL_MS);
  const { ask, dialog } = useConfirm();
  if (!data) return html`<h1>Fleet</h1>${error ? html`<${ErrorNote} error=${error} />` : html`<${Loading} />`}`;
  const { workers, health } = data;
  const training = new Map(health.training.map((t) => [t.jobId, t]));
  const drains = new Map(health.drains.map((d) => [d.host, d]));
  const liveHosts = new Set(workers.map((w) => w.host));
  const configured = new Set(fleet.hosts.map((h) => h.id));
  // A live worker for a host this API's config does not know still shows.
  const strangers = [...liveHosts].filter((id) => !configured.has(id)).map((id) => ({ id, gpus: [], pools: [], cpuSlots: 0 }));
  const hosts = [...fleet.hosts, ...strangers];
  const gpusTotal = fleet.hosts.reduce((n, h) => n + h.gpus.length, 0);
  const gpusBusy = workers.reduce((n, w) => n + w.gpus.filter((g) => g.jobId).length, 0);
  return html`<h1>Fleet</h1>
    <p class="summary">
      ${`${[...liveHosts].filter((h) => configured.has(h)).length} of ${fleet.hosts.length} hosts live · ${gpusBusy} of ${gpusTotal} GPUs busy · `}
      ${`${health.training.length} training${health.training.length === 1 ? '' : 's'} running · system `}
      <${Badge} kind=${health.status === 'ok' ? 'good' : 'warn'}>${health.status}<//>
    </p>
    ${health.warnings.length ? html`<ul class="warnings">${health.warnings.map((w) => html`<li>${w}</li>`)}</ul>` : null}
    <${ErrorNote} error=${error} />
    <div class="cards">
      ${hosts.map((host) => html`<${HostCard} host=${host} workers=${workers.filter((w) => w.host === host.id)} drains=${drains.get(host.id)}
        training=${training} me=${me} ask=${ask} refresh=${refresh} />`)}
    </div>
    ${dialog}`;
}
