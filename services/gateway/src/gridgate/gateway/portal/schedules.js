// Your schedules (docs/schedules.md): the list with pause, resume and delete, and one form to
// create a schedule or change one, with the API's validation messages shown at their fields.
import { ApiProblem, call } from './api.js';
import { h, say, show, table } from './dom.js';

function label(s) {
  return s.name || s.scheduleId;
}

export async function scheduleList() {
  const page = await call('/api/schedules?limit=200');
  const rows = page.schedules.map((s) => [
    h('a', { href: `#/schedules/${encodeURIComponent(s.scheduleId)}` }, label(s)),
    s.workflow, s.paused ? 'paused' : 'active', s.nextFireTime || '',
    h('span', {},
      h('button', { type: 'button', onclick: async () => {
        await call(`/api/schedules/${s.scheduleId}`, { method: 'PATCH', json: { paused: !s.paused } });
        await scheduleList();
      } }, s.paused ? `Resume ${label(s)}` : `Pause ${label(s)}`),
      ' ',
      h('button', { type: 'button', onclick: async () => {
        if (!window.confirm(`Delete the schedule ${label(s)}? Its jobs stay.`)) return;
        await call(`/api/schedules/${s.scheduleId}`, { method: 'DELETE' });
        say(`Schedule ${label(s)} deleted.`);
        await scheduleList();
      } }, `Delete ${label(s)}`))]);
  show(h('h1', {}, 'Schedules'),
    h('p', {}, h('a', { href: '#/schedules/new', id: 'new-schedule' }, 'New schedule')),
    page.schedules.length
      ? table(['Schedule (edit)', 'Workflow', 'State', 'Next fire time', 'Actions'], rows)
      : h('p', {}, 'No schedules yet.'));
}

// One labelled control with its hint and the place for its error; `key` is the field name
// the API's errors use (e.g. "trigger.expression").
function control(key, text, input, hint) {
  const id = `schedule-${key.replace(/\./g, '-')}`;
  input.id = id;
  input.setAttribute('aria-describedby', `${hint ? `${id}-hint ` : ''}${id}-error`);
  return h('div', { class: 'field', 'data-field': key },
    h('label', { for: id }, text),
    hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null,
    input,
    h('p', { class: 'error', id: `${id}-error`, 'aria-live': 'polite' }));
}

// The form's field for an error's field name: "trigger.cron.expression" (pydantic names the
// union's branch) is "trigger.expression"; "parameters.x" is the parameters box.
function fieldFor(form, name) {
  let key = String(name || '').replace(/^body\./, '').replace(/^trigger\.(cron|interval)\./, 'trigger.');
  if (key.startsWith('parameters.')) key = 'parameters';
  while (key) {
    const found = form.querySelector(`[data-field="${key}"]`);
    if (found) return found;
    key = key.includes('.') ? key.slice(0, key.lastIndexOf('.')) : '';
  }
  return null;
}

function triggerOf(schedule) {
  const trigger = schedule?.trigger || { kind: 'cron', expression: '0 2 * * *', timezone: 'UTC' };
  let minutes = '';
  if (trigger.kind === 'interval') {
    minutes = trigger.minutes ?? (trigger.hours ? trigger.hours * 60 : Math.ceil((trigger.seconds || 60) / 60));
  }
  return { ...trigger, minutes };
}

// #/schedules/new, or #/schedules/ID to change one (its workflow stays: make a new schedule
// for another workflow).
export async function scheduleForm(scheduleId) {
  const [schedule, catalogue] = await Promise.all([
    scheduleId ? call(`/api/schedules/${encodeURIComponent(scheduleId)}`) : null,
    call('/api/workflows')]);
  const trigger = triggerOf(schedule);
  const workflow = h('select', { name: 'workflow', disabled: Boolean(schedule) },
    catalogue.workflows.map((w) => h('option', {
      value: w.id, selected: schedule ? schedule.workflow.id === w.id : w.id === 'hello-world' },
    `${w.title} (${w.id})`)));
  const kind = h('select', { name: 'kind' },
    h('option', { value: 'cron', selected: trigger.kind === 'cron' }, 'At times given by a cron expression'),
    h('option', { value: 'interval', selected: trigger.kind === 'interval' }, 'Every so many minutes'));
  const expression = h('input', { name: 'expression', type: 'text', value: trigger.expression || '' });
  const timezone = h('input', { name: 'timezone', type: 'text', value: trigger.timezone || 'UTC' });
  const minutes = h('input', { name: 'minutes', type: 'number', min: 1, step: 1, value: trigger.minutes });
  const parameters = h('textarea', { name: 'parameters', rows: 4, cols: 60 },
    JSON.stringify(schedule?.parameters || {}, null, 1));
  const cronFields = h('div', {},
    control('trigger.expression', 'Cron expression', expression,
      'Five fields: minute hour day-of-month month weekday, e.g. 0 2 * * * (02:00 each day).'),
    control('trigger.timezone', 'Time zone', timezone, 'IANA name, e.g. UTC or Europe/Paris.'));
  const intervalFields = control('trigger.minutes', 'Every (minutes)', minutes);
  const showKind = () => {
    cronFields.hidden = kind.value !== 'cron';
    intervalFields.hidden = kind.value !== 'interval';
  };
  kind.addEventListener('change', showKind);
  showKind();
  const formError = h('p', { class: 'error', id: 'form-error', 'aria-live': 'assertive', tabindex: -1 });
  const form = h('form', { novalidate: true, id: 'schedule-form' },
    control('name', 'Name', h('input', { name: 'name', type: 'text', value: schedule?.name || '' })),
    control('workflow', 'Workflow', workflow, schedule ? 'A schedule keeps its workflow.' : null),
    control('facility', 'Facility', h('input', { name: 'facility', type: 'text', value: schedule?.facility || 'local' })),
    control('parameters', 'Parameters (JSON)', parameters,
      'The parameters of each job, as a JSON object; the workflow\'s defaults fill the rest.'),
    h('fieldset', { 'data-field': 'trigger' }, h('legend', {}, 'When'),
      control('trigger.kind', 'Trigger', kind), cronFields, intervalFields,
      h('p', { class: 'error', id: 'schedule-trigger-error', 'aria-live': 'polite' })),
    formError,
    h('button', { type: 'submit' }, schedule ? 'Save schedule' : 'Create schedule'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const node of form.querySelectorAll('.error')) node.textContent = '';
    for (const node of form.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
    const body = { name: form.elements.name.value || null, facility: form.elements.facility.value };
    if (!schedule) body.workflow = workflow.value;
    body.trigger = kind.value === 'cron'
      ? { kind: 'cron', expression: expression.value, timezone: timezone.value }
      : { kind: 'interval', minutes: minutes.value === '' ? null : Number(minutes.value) };
    try {
      body.parameters = JSON.parse(parameters.value || '{}');
    } catch (error) {
      showErrors(form, formError, [{ field: 'parameters', message: `not JSON: ${error.message}` }], '');
      return;
    }
    try {
      const saved = schedule
        ? await call(`/api/schedules/${encodeURIComponent(schedule.scheduleId)}`, { method: 'PATCH', json: body })
        : await call('/api/schedules', { method: 'POST', json: body });
      say(`Schedule ${saved.name || saved.scheduleId} ${schedule ? 'saved' : 'created'}.`);
      window.location.hash = '#/schedules';
    } catch (error) {
      if (!(error instanceof ApiProblem)) throw error;
      // A workflow's refusal of the parameters names them alone ("repeat"): they are the
      // parameters box's.
      const ofParameters = /[:/]invalid-parameters$/.test(String(error.problem.type || ''));
      const errors = error.errors.map((item) => (ofParameters && !String(item.field).startsWith('parameters')
        ? { ...item, field: `parameters.${item.field}` } : item));
      showErrors(form, formError, errors, error.message);
    }
  });
  show(h('h1', {}, schedule ? `Schedule ${label(schedule)}` : 'New schedule'),
    schedule ? h('p', {}, `Next fire time: ${schedule.nextFireTime || 'none'}${
      schedule.pausedReason ? ` (paused: ${schedule.pausedReason})` : ''}`) : null,
    form);
}

function showErrors(form, formError, errors, summary) {
  formError.textContent = summary;
  let first = null;
  for (const item of errors) {
    const where = fieldFor(form, item.field);
    const place = where?.querySelector(':scope > .error');
    if (!place) {
      formError.append(h('span', {}, ` ${item.field}: ${item.message}`));
      continue;
    }
    const detail = String(item.field).startsWith('parameters.') ? `${item.field.slice(11)}: ` : '';
    place.textContent = `${place.textContent}${place.textContent ? '; ' : ''}${detail}${item.message}`;
    const input = where.querySelector(':scope > input, :scope > select, :scope > textarea');
    input?.setAttribute('aria-invalid', 'true');
    first = first || input || place;
  }
  (first || formError).focus();
}
