// The job list and one job's page: phase history, tasks, logs, results with downloads.
// Phases are kept live by long polling (GET /api/jobs/{id}?WAIT=n), which answers at once
// when the phase changes; a Server-Sent Events source can replace `followJob` and
// `pollList` later.
import { call } from './api.js';
import { h, phase, say, show, table } from './dom.js';

const FINAL = new Set(['COMPLETED', 'ERROR', 'ABORTED', 'ARCHIVED']);
let following = 0; // a new page stops the previous page's polling
let shownLog = null; // the task whose log is open on the job page: kept open on redraws

const LIST_POLL_MS = 5000;

function renderList(page) {
  show(h('h1', {}, 'Jobs'),
    h('p', {}, `${page.total} job(s)`),
    table(['Job', 'Phase', 'Workflow', 'Facility', 'Created'], page.jobs.map((job) => [
      h('a', { href: `#/jobs/${job.jobId}` }, job.jobId), phase(job.phase), job.workflow,
      job.facility, job.creationTime])));
}

// The newest 100 jobs, read again every few seconds while the list is shown (only
// redrawn when something changed, so keyboard focus is not lost for nothing).
export async function jobList() {
  const mine = ++following;
  const page = await call('/api/jobs?limit=100');
  renderList(page);
  pollList(mine, page).catch((error) => say(error.message));
}

async function pollList(mine, first) {
  let page = first;
  while (mine === following) {
    await new Promise((resolve) => { setTimeout(resolve, LIST_POLL_MS); });
    if (mine !== following) return;
    const next = await call('/api/jobs?limit=100');
    if (mine === following && JSON.stringify(next) !== JSON.stringify(page)) {
      page = next;
      renderList(page);
    }
  }
}

function render(job) {
  const info = job.jobInfo;
  const logView = h('pre', { class: 'log', id: 'log', tabindex: 0, 'aria-label': 'Log' });
  const loadLog = async (task) => {
    logView.textContent = await call(`/api/jobs/${job.jobId}/stdout?task=${task}`);
  };
  const showLog = (task) => async () => {
    shownLog = task;
    await loadLog(task);
    logView.focus();
  };
  if (shownLog !== null) loadLog(shownLog).catch((error) => say(error.message));
  const actions = [];
  if (!FINAL.has(job.phase)) {
    actions.push(h('button', { type: 'button', onclick: async () => {
      await call(`/api/jobs/${job.jobId}/phase`, { method: 'POST', json: { PHASE: 'ABORT' } });
      say(`Job ${job.jobId} aborted.`);
    } }, 'Abort'));
  }
  actions.push(h('button', { type: 'button', onclick: async () => {
    if (!window.confirm(`Delete job ${job.jobId} and its results?`)) return;
    await call(`/api/jobs/${job.jobId}`, { method: 'DELETE' });
    say(`Job ${job.jobId} deleted.`);
    window.location.hash = '#/jobs';
  } }, 'Delete'));
  show(
    h('h1', {}, `Job ${job.jobId}`),
    h('p', {}, 'Phase: ', h('span', { id: 'phase', 'aria-live': 'polite' }, phase(job.phase)),
      ` — ${info.workflow.id} ${info.workflow.version} on ${info.facility}`),
    job.errorSummary ? h('p', { class: 'error' }, job.errorSummary.message) : null,
    info.pendingReason ? h('p', { class: 'hint' }, info.pendingReason) : null,
    h('p', {}, actions),
    h('h2', {}, 'Tasks'),
    table(['Task', 'Phase', 'Exit code', 'Log'], info.tasks.map((task) => [
      String(task.index), phase(task.phase), task.exitCode ?? '',
      h('button', { type: 'button', onclick: showLog(task.index) }, `Show log of task ${task.index}`)])),
    logView,
    h('h2', {}, 'Results'),
    job.results.length
      ? table(['File', 'Bytes', 'SHA-256'], job.results.map((result) => [
        h('a', { href: result.signedUrl || result.href, download: result.id.split('/').pop() }, result.id),
        String(result.size), h('code', {}, result.sha256)]))
      : h('p', {}, 'None yet.'),
    h('h2', {}, 'Phase history'),
    table(['At', 'Change', 'Source', 'Detail'], info.history.map((entry) => [
      entry.at, entry.to ? `${entry.from || '-'} → ${entry.to}` : '', entry.source, entry.detail || ''])),
  );
}

// The job's page, drawn once now, then kept current in the background.
export async function jobPage(jobId) {
  const mine = ++following;
  shownLog = null;
  const job = await call(`/api/jobs/${jobId}`);
  render(job);
  followJob(mine, job).catch((error) => say(error.message));
}

async function followJob(mine, first) {
  let job = first;
  const jobId = job.jobId;
  while (!FINAL.has(job.phase) && mine === following) {
    const next = await call(`/api/jobs/${jobId}?WAIT=10`);
    if (mine !== following) return;
    if (JSON.stringify(next) !== JSON.stringify(job)) {
      job = next;
      if (!FINAL.has(job.phase)) render(job);
    }
  }
  if (mine === following) {
    // Final: the results carry freshly signed download URLs.
    const results = await call(`/api/jobs/${jobId}/results`);
    job.results = results.results;
    render(job);
  }
}

export function stopFollowing() { following += 1; }
