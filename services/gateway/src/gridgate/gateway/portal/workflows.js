// The workflow catalogue with search, and one workflow's submission form: generated from
// its JSON Schema, with the API's validation messages shown at their fields.
import { ApiProblem, call } from './api.js';
import { user } from './auth.js';
import { h, say, show, table } from './dom.js';
import { imageChoice } from './images.js';

export async function catalogue(query = '') {
  const search = h('input', { id: 'search', type: 'search', value: query });
  const results = h('div', { id: 'catalogue' });
  const run = async () => {
    const keyword = search.value.trim();
    const found = await call(`/api/workflows${keyword ? `?keyword=${encodeURIComponent(keyword)}` : ''}`);
    results.replaceChildren(table(['Workflow', 'Description', 'Keywords'],
      found.workflows.map((w) => [
        h('a', { href: `#/workflows/${encodeURIComponent(w.id)}` }, `${w.title} (${w.id} ${w.version})`),
        w.description, w.keywords.join(', ')])));
  };
  const form = h('form', { role: 'search', onsubmit: (e) => { e.preventDefault(); run(); } },
    h('label', { for: 'search' }, 'Search workflows'), search, ' ', h('button', { type: 'submit' }, 'Search'));
  show(h('h1', {}, 'Workflows'), form, results);
  await run();
}

function field(name, spec, required) {
  const id = `param-${name}`;
  const hint = spec.description ? h('p', { class: 'hint', id: `${id}-hint` }, spec.description) : null;
  const attrs = { id, name, 'aria-describedby': `${hint ? `${id}-hint ` : ''}${id}-error`, required };
  let control;
  if (Array.isArray(spec.enum)) {
    control = h('select', attrs, spec.enum.map((value) =>
      h('option', { value, selected: value === spec.default }, value)));
  } else if (spec.type === 'boolean') {
    control = h('input', { ...attrs, type: 'checkbox', checked: spec.default === true });
  } else if (spec.type === 'integer' || spec.type === 'number') {
    control = h('input', { ...attrs, type: 'number', step: spec.type === 'integer' ? 1 : 'any',
      value: spec.default ?? '' });
  } else {
    control = h('input', { ...attrs, type: 'text', value: spec.default ?? '' });
  }
  const limits = [];
  if (spec.minimum !== undefined) limits.push(`at least ${spec.minimum}`);
  if (spec.maximum !== undefined) limits.push(`at most ${spec.maximum}`);
  return h('div', { class: 'field' },
    h('label', { for: id }, `${spec.title || name}${required ? ' (required)' : ''}`),
    hint, limits.length ? h('p', { class: 'hint' }, limits.join(', ')) : null, control,
    h('p', { class: 'error', id: `${id}-error`, 'aria-live': 'polite' }));
}

// The gateway's own rules (services/facilities.py shortfalls): the job's duration is the
// workflow's default execution duration, as the form sets none.
function unfitReasons(facility, needs, vo, duration) {
  const reasons = [];
  if (facility.cores < needs.cores) reasons.push(`${facility.cores} cores, needs ${needs.cores}`);
  if (facility.memory_gb < needs.memory_gb) reasons.push(`${facility.memory_gb} GB memory, needs ${needs.memory_gb}`);
  if ((facility.gpu_count || 0) < (needs.gpu_count || 0)) reasons.push(`no GPU, needs ${needs.gpu_count}`);
  if (needs.gpu_type && facility.gpu_type && needs.gpu_type !== facility.gpu_type) reasons.push(`${facility.gpu_type} GPUs, needs ${needs.gpu_type}`);
  if (facility.max_walltime_s < duration) reasons.push(`runs at most ${facility.max_walltime_s} s, the job asks for ${duration}`);
  if (needs.runtime && !(facility.runtimes || []).includes(needs.runtime)) reasons.push(`no ${needs.runtime}`);
  if (vo && !facility.vos.includes('*') && !facility.vos.includes(vo)) reasons.push(`does not serve ${vo}`);
  return reasons;
}

function userVo() {
  const groups = user()['wlcg.groups'] || [];
  return groups.length ? groups[0].replace(/^\//, '').split('/')[0] : null;
}

export async function submitForm(workflowId) {
  const [workflow, facilities] = await Promise.all([
    call(`/api/workflows/${encodeURIComponent(workflowId)}`), call('/api/facilities')]);
  const schema = workflow.parameters;
  const required = new Set(schema.required || []);
  const names = Object.keys(schema.properties || {});
  const needs = workflow.requirements;
  const vo = userVo();
  const duration = workflow.execution?.default_execution_duration_s ?? needs.walltime_s;
  const unfit = new Map(facilities.facilities.map((f) => [f.id, unfitReasons(f, needs, vo, duration)]));
  // Local when it fits, else the first that does.
  const fitting = facilities.facilities.filter((f) => !unfit.get(f.id).length).map((f) => f.id);
  const preferred = fitting.includes('local') ? 'local' : fitting[0];
  const choices = facilities.facilities.map((facility) => {
    const reasons = unfit.get(facility.id);
    const id = `facility-${facility.id}`;
    return h('div', { class: 'choice' },
      h('input', { type: 'radio', name: 'facility', id, value: facility.id, disabled: reasons.length > 0,
        checked: facility.id === preferred, 'aria-describedby': `${id}-why` }),
      h('label', { for: id, class: reasons.length ? 'unfit' : '' }, `${facility.title} (${facility.id})`),
      h('p', { class: 'hint', id: `${id}-why` },
        reasons.length ? `Unfit: ${reasons.join('; ')}` : `${facility.cores} cores, ${facility.memory_gb} GB`));
  });
  const formError = h('p', { class: 'error', id: 'form-error', 'aria-live': 'assertive', tabindex: -1 });
  const fieldOf = (name) => field(name, schema.properties[name], required.has(name));
  // A containerised workflow: its build options and digest parameter go to the image choice.
  let image = null;
  if (workflow.container) {
    const buildNames = new Set(workflow.container.build_args.map((a) => a.parameter));
    image = await imageChoice(workflow, names.filter((name) => buildNames.has(name)).map(fieldOf));
  }
  const imageOwned = (name) => image && (name === image.digestParameter
    || workflow.container.build_args.some((a) => a.parameter === name));
  const form = h('form', { novalidate: true, id: 'submit-form' },
    h('fieldset', {}, h('legend', {}, 'Parameters'),
      names.filter((name) => !imageOwned(name)).map(fieldOf)),
    image ? image.fieldset : null,
    h('fieldset', {}, h('legend', {}, 'Facility'), choices),
    formError,
    h('button', { type: 'submit' }, 'Submit and run'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const node of form.querySelectorAll('.error')) node.textContent = '';
    for (const node of form.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
    const parameters = {};
    for (const name of names) {
      const control = form.elements[name];
      if (!control) continue; // the digest parameter: from the image choice, below
      if (control.type === 'checkbox') parameters[name] = control.checked;
      else if (control.value !== '') parameters[name] = control.value;
    }
    const digest = image?.chosen();
    if (digest) parameters[image.digestParameter] = digest;
    const facility = form.querySelector('input[name=facility]:checked')?.value;
    try {
      say('Submitting…');
      const job = await call('/api/jobs', {
        method: 'POST',
        json: { workflow: workflow.id, facility, PHASE: 'RUN', parameters },
        headers: { 'Idempotency-Key': crypto.randomUUID() },
      });
      say(`Job ${job.jobId} submitted.`);
      window.location.hash = `#/jobs/${job.jobId}`;
    } catch (error) {
      say('');
      if (!(error instanceof ApiProblem)) throw error;
      formError.textContent = error.message;
      let first = null;
      for (const item of error.errors) {
        const name = String(item.field || '').replace(/^parameters\./, '');
        const control = document.getElementById(`param-${name}`);
        const where = document.getElementById(`param-${name}-error`);
        if (where) {
          where.textContent = item.message;
          control?.setAttribute('aria-invalid', 'true');
          first = first || control || where;
        } else {
          formError.append(h('span', {}, ` ${item.field}: ${item.message}`));
        }
      }
      (first || formError).focus();
    }
  });
  show(h('h1', {}, workflow.title),
    h('p', {}, workflow.description),
    workflow.standin ? h('p', { class: 'hint' }, `Stand-in: ${workflow.standin_note}`) : null,
    form);
}
