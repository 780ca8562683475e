// Your schedules: workflow, state, next fire time; pause and resume.
import { call } from './api.js';
import { h, show, table } from './dom.js';

export async function scheduleList() {
  const page = await call('/api/schedules?limit=200');
  const rows = page.schedules.map((s) => [
    s.name || s.scheduleId, s.workflow, s.paused ? 'paused' : 'active',
    s.nextFireTime || '',
    h('button', { type: 'button', onclick: async () => {
      await call(`/api/schedules/${s.scheduleId}`, { method: 'PATCH', json: { paused: !s.paused } });
      await scheduleList();
    } }, s.paused ? `Resume ${s.name || s.scheduleId}` : `Pause ${s.name || s.scheduleId}`)]);
  show(h('h1', {}, 'Schedules'),
    page.schedules.length ? table(['Schedule', 'Workflow', 'State', 'Next fire time', 'Action'], rows)
      : h('p', {}, 'No schedules. Create them with the API or `gridgate schedules create`.'));
}
