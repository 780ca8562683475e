// The image choice of a containerised workflow's form (docs/containers.md): either the image
// of the build options (the gateway selects it when the registry has it, else builds it
// first) or an existing image of the recipe's repository, named by its digest.
import { call } from './api.js';
import { h } from './dom.js';

const BUILD = '';

function bytes(size) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function shortDigest(digest) {
  return `${digest.slice(0, 19)}…`;
}

function argumentsText(buildArgs) {
  return Object.entries(buildArgs).map(([name, value]) => `${name}=${value}`).join(', ');
}

// Shows an image's own build options in the (then disabled) build-option fields, so that
// the job's parameters say what the image was built with.
function showArguments(form, container, image) {
  for (const argument of container.build_args) {
    const control = form.elements[argument.parameter];
    if (!control) continue;
    control.disabled = Boolean(image);
    if (!image || !(argument.name in image.build_args)) continue;
    const value = image.build_args[argument.name];
    if (control.type === 'checkbox') control.checked = value === 'true';
    else if (control.tagName !== 'SELECT' || [...control.options].some((o) => o.value === value)) {
      control.value = value;
    }
  }
}

// The "Image" fieldset: `buildFields` are the form fields of the build options. Returns the
// fieldset and `chosen()`, the digest picked (or null for the image of the build options).
export async function imageChoice(workflow, buildFields) {
  const container = workflow.container;
  const digestParameter = container.digest_parameter;
  const choose = (image) => (event) => showArguments(event.target.form, container, image);
  const buildChoice = h('div', { class: 'choice' },
    h('input', { type: 'radio', name: 'image', id: 'image-build', value: BUILD, checked: true,
      'aria-describedby': 'image-build-hint', onchange: choose(null) }),
    h('label', { for: 'image-build' }, 'The image of these build options'),
    h('p', { class: 'hint', id: 'image-build-hint' },
      'Selected if the registry has it; otherwise built first, once (the job waits meanwhile).'));
  let listing;
  try {
    listing = await call(`/api/workflows/${encodeURIComponent(workflow.id)}/images?version=${
      encodeURIComponent(workflow.version)}`);
  } catch (error) {
    listing = { images: [], unavailable: error.message };
  }
  let existing;
  if (!digestParameter) {
    existing = null; // the workflow cannot name an image: build options only
  } else if (listing.unavailable) {
    existing = h('p', { class: 'hint', id: 'images-unavailable' },
      `The registry's images cannot be listed now: ${listing.unavailable}`);
  } else if (!listing.images.length) {
    existing = h('p', { class: 'hint', id: 'images-none' },
      `No image of ${listing.repository} yet: the first job builds one.`);
  } else {
    existing = h('table', { id: 'images' },
      h('caption', {}, `Existing images of ${listing.repository}, newest first`),
      h('thead', {}, h('tr', {}, ['Use', 'Digest', 'Size', 'Created', 'Build arguments', 'Recipe']
        .map((name) => h('th', { scope: 'col' }, name)))),
      h('tbody', {}, listing.images.map((image, n) => h('tr', {},
        h('td', {}, h('input', { type: 'radio', name: 'image', id: `image-${n}`, value: image.digest,
          'aria-describedby': `image-${n}-args`, onchange: choose(image) })),
        h('td', {}, h('label', { for: `image-${n}`, title: image.digest }, shortDigest(image.digest))),
        h('td', {}, bytes(image.size)),
        h('td', {}, image.created || ''),
        h('td', { id: `image-${n}-args` }, argumentsText(image.build_args)),
        h('td', {}, image.current_recipe ? 'this version' : 'an older recipe')))));
  }
  const error = digestParameter
    ? h('p', { class: 'error', id: `param-${digestParameter}-error`, tabindex: -1, 'aria-live': 'polite' })
    : null;
  const fieldset = h('fieldset', { id: 'image' }, h('legend', {}, 'Image'),
    h('p', { class: 'hint' }, `Tasks run in a container image of ${container.repository}, built from `
      + "this workflow's recipe."),
    buildChoice, h('div', { class: 'build-options' }, buildFields), existing, error);
  const chosen = () => {
    const picked = fieldset.querySelector('input[name=image]:checked');
    return picked && picked.value !== BUILD ? picked.value : null;
  };
  return { fieldset, chosen, digestParameter };
}
