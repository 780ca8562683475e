// Your schedules: trigger, next fire time, pause and resume.
import { call } from './api.js';
import { h, show, table } from './dom.js';

function trigger(t) {
  if (t.kind === 'cron') return `cron ${t.expression} (${t.timezone})`;
  return `${t.kind} ${Object.entries(t).filter(([k, v]) => k !== 'kind' && v !== null).map(([k, v]) => `${k}=${v}`).join(' ')}`;
}

export async function scheduleList() {
  const page = await call('/api/schedules?limit=200');
  const rows = page.schedules.map((s) => [
    s.name || s.scheduleId, s.workflow, trigger(s.trigger), s.paused ? 'paused' : 'active',
    s.nextFireTime || '',
    h('button', { type: 'button', onclick: async () => {
      await call(`/api/schedules/${s.scheduleId}`, { method: 'PATCH', json: { paused: !s.paused } });
      await scheduleList();
    } }, s.paused ? `Resume ${s.name || s.scheduleId}` : `Pause ${s.name || s.scheduleId}`)]);
  show(h('h1', {}, 'Schedules'),
    page.schedules.length ? table(['Schedule', 'Workflow', 'Trigger', 'State', 'Next', ''], rows)
      : h('p', {}, 'No schedules. Create them with the API or `gridgate schedules create`.'));
}
