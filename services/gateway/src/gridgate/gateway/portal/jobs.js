// The job list and one job's page: phase history, tasks, logs, results with downloads.
// Both are kept live by the event streams (GET /api/events, GET /api/jobs/{id}/events): an
// event makes the JSON be read again. Where no stream can be opened they poll instead: the
// list every few seconds, the job by the UWS long poll (?WAIT=n).
import { call } from './api.js';
import { h, phase, say, show, table } from './dom.js';
import { follow, StreamUnavailable } from './events.js';

const FINAL = new Set(['COMPLETED', 'ERROR', 'ABORTED', 'ARCHIVED']);
let following = 0; // a new page stops the previous page's updates
let stopStream = new AbortController();
let shownLog = null; // the task whose log is open on the job page: kept open on redraws
let liveMode = ''; // how the page is kept current, shown to the user

const LIST_POLL_MS = 5000;
const PAGE = 100;
const WAITING = new Set(['QUEUED', 'HELD']);
const WAITING_REREAD_MS = 3000;

function liveNote() {
  return h('p', { class: 'hint', id: 'live' }, liveMode);
}

// Reads again with `read` after events, one read at a time: events that come during a
// read cause one more read, not one each.
function coalesced(read) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) { again = true; return running; }
    running = (async () => {
      do { again = false; await read(); } while (again);
    })().finally(() => { running = null; });
    return running;
  };
  return run;
}

// Keeps the page current from the stream at `path`; falls back to `poll()` when it cannot
// be opened.
async function live(mine, path, onEvent, poll, onOpen = () => {}) {
  try {
    await follow(path, {
      signal: stopStream.signal,
      onOpen: () => { liveMode = 'Live updates: streamed.'; redrawNote(mine); onOpen(); },
      onEvent,
    });
  } catch (error) {
    if (mine !== following) return; // the page was left meanwhile
    if (!(error instanceof StreamUnavailable)) throw error;
    liveMode = 'Live updates: polled.';
    redrawNote(mine);
    await poll();
  }
}

function redrawNote(mine) {
  const note = document.getElementById('live');
  if (mine === following && note) note.textContent = liveMode;
}

// Same-origin path of the API's `next` link (it is absolute, and names the host the gateway
// saw, which behind a proxy may not be the browser's).
function samePath(url) {
  const parsed = new URL(url, window.location.origin);
  return `${parsed.pathname}${parsed.search}`;
}

// Reads the newest `count` jobs (at least a page), a page at a time by the API's cursor.
async function readJobs(count) {
  const jobs = [];
  let total = 0;
  let next = `/api/jobs?limit=${PAGE}`;
  while (next && (jobs.length < count || !jobs.length)) {
    const page = await call(next);
    jobs.push(...page.jobs);
    total = page.total;
    next = page.next ? samePath(page.next) : null;
  }
  return { jobs, total, next };
}

function renderList(listing, onMore, focusAt = null) {
  const more = listing.next
    ? h('button', { type: 'button', id: 'more-jobs', onclick: onMore }, `Show ${PAGE} more jobs`)
    : null;
  show(h('h1', {}, 'Jobs'),
    h('p', { id: 'jobs-count' }, `${listing.jobs.length} of ${listing.total} job(s) shown`), liveNote(),
    table(['Job', 'Phase', 'Workflow', 'Facility', 'Created'], listing.jobs.map((job) => [
      h('a', { href: `#/jobs/${job.jobId}` }, job.jobId), phase(job.phase), job.workflow,
      job.facility, job.creationTime])),
    more);
  // After "more": the first job just shown, so a keyboard user goes on from there.
  if (focusAt !== null) document.querySelectorAll('#main tbody a')[focusAt]?.focus();
}

// Your newest jobs, a page at first and a page more on each "more", read again (as many as
// are shown) after each event of a job while the list is shown; only redrawn when something
// changed, so keyboard focus is not lost for nothing.
export async function jobList() {
  const mine = ++following;
  liveMode = '';
  let listing = await readJobs(PAGE);
  let wanted = PAGE;
  let grown = 0; // counts "more": a read begun before one is stale when it ends
  const draw = (focusAt = null) => {
    if (mine === following) renderList(listing, () => more().catch((error) => say(error.message)), focusAt);
  };
  const reread = coalesced(async () => {
    let next;
    let begun;
    do {
      begun = grown;
      next = await readJobs(wanted);
    } while (begun !== grown && mine === following);
    if (mine === following && JSON.stringify(next) !== JSON.stringify(listing)) {
      listing = next;
      draw();
    }
  });
  const more = async () => {
    const shown = listing.jobs.length;
    wanted = shown + PAGE;
    const page = await call(listing.next);
    if (mine !== following) return;
    grown += 1;
    listing = { jobs: [...listing.jobs, ...page.jobs], total: page.total,
      next: page.next ? samePath(page.next) : null };
    draw(shown);
  };
  draw();
  const onEvent = (event) => {
    if (event.type.startsWith('org.gridgate.job.')) reread().catch((error) => say(error.message));
  };
  // The stream brings events from its opening on: read once more when it opens (again
  // after a reconnection too), for what changed before.
  const opened = () => { reread().catch((error) => say(error.message)); };
  live(mine, '/api/events', onEvent, () => pollList(mine, reread), opened)
    .catch((error) => say(error.message));
}

async function pollList(mine, reread) {
  while (mine === following) {
    await new Promise((resolve) => { setTimeout(resolve, LIST_POLL_MS); });
    if (mine !== following) return;
    await reread();
  }
}

// The image a containerised job runs in, pinned by digest (docs/containers.md).
function imageLine(image) {
  const args = Object.entries(image.buildArgs || {}).map(([name, value]) => `${name}=${value}`);
  const how = image.built ? 'built for this job' : 'selected';
  return h('p', { id: 'image' }, `Image: ${image.reference} (${how}${args.length ? `; ${args.join(', ')}` : ''})`);
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
    h('h1', {}, `Job ${job.jobId}`), liveNote(),
    h('p', {}, 'Phase: ', h('span', { id: 'phase', 'aria-live': 'polite' }, phase(job.phase)),
      ` — ${info.workflow.id} ${info.workflow.version} on ${info.facility}`),
    job.errorSummary ? h('p', { class: 'error' }, job.errorSummary.message) : null,
    info.pendingReason ? h('p', { class: 'hint', id: 'pending' }, info.pendingReason) : null,
    info.image ? imageLine(info.image) : null,
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
  liveMode = '';
  const job = await call(`/api/jobs/${jobId}`);
  render(job);
  if (FINAL.has(job.phase)) {
    await showFinal(mine, job);
    return;
  }
  let shown = job;
  // The job's stream replays its events from the first one, so none is missed between
  // the read above and the stream's opening.
  const reread = coalesced(async () => {
    if (mine !== following || FINAL.has(shown.phase)) return;
    const next = await call(`/api/jobs/${jobId}`);
    if (mine !== following) return;
    if (FINAL.has(next.phase)) {
      shown = next;
      stopStream.abort();
      await showFinal(mine, next);
    } else if (JSON.stringify(next) !== JSON.stringify(shown)) {
      shown = next;
      render(shown);
    }
  });
  const onEvent = () => { reread().catch((error) => say(error.message)); };
  live(mine, `/api/jobs/${encodeURIComponent(jobId)}/events`, onEvent, () => followJob(mine, shown))
    .catch((error) => say(error.message));
  whileWaiting(mine, () => shown, reread).catch((error) => say(error.message));
}

// What a queued job waits for (its image being built, a facility's outage) changes without
// an event of its own: while it waits, read it again now and then.
async function whileWaiting(mine, current, reread) {
  while (mine === following && WAITING.has(current().phase)) {
    await new Promise((resolve) => { setTimeout(resolve, WAITING_REREAD_MS); });
    if (mine === following && WAITING.has(current().phase)) await reread();
  }
}

async function showFinal(mine, job) {
  // Final: the results carry freshly signed download URLs.
  const results = await call(`/api/jobs/${job.jobId}/results`);
  if (mine !== following) return;
  render({ ...job, results: results.results });
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
  if (mine === following) await showFinal(mine, job);
}

export function stopFollowing() {
  following += 1;
  stopStream.abort();
  stopStream = new AbortController();
}
