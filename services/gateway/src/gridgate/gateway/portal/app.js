// The portal's router: #/workflows, #/workflows/ID, #/jobs, #/jobs/ID, #/schedules,
// #/schedules/new, #/schedules/ID.
import { completeLogin, login, logout, token, user, whenSessionEnds } from './auth.js';
import { h, say, show } from './dom.js';
import { jobList, jobPage, stopFollowing } from './jobs.js';
import { scheduleForm, scheduleList } from './schedules.js';
import { catalogue, submitForm } from './workflows.js';

const loginButton = document.getElementById('login');
const logoutButton = document.getElementById('logout');

function header() {
  const signedIn = Boolean(token());
  loginButton.hidden = signedIn;
  logoutButton.hidden = !signedIn;
  document.getElementById('who').textContent = signedIn ? `Signed in as ${user().sub}` : '';
}

async function route() {
  stopFollowing();
  header();
  // A submission's note stays on its job, a schedule's on the list.
  if (!/^#\/(jobs\/|schedules$)/.test(window.location.hash)) say('');
  if (!token()) {
    show(h('h1', {}, 'gridgate'), h('p', {}, 'Log in to see workflows, facilities and your jobs.'));
    return;
  }
  const [, page, id] = (window.location.hash || '#/workflows').split('/');
  try {
    if (page === 'workflows' && id) await submitForm(decodeURIComponent(id));
    else if (page === 'jobs' && id) await jobPage(decodeURIComponent(id));
    else if (page === 'jobs') await jobList();
    else if (page === 'schedules' && id) await scheduleForm(id === 'new' ? null : decodeURIComponent(id));
    else if (page === 'schedules') await scheduleList();
    else await catalogue();
    document.getElementById('main').focus();
  } catch (error) {
    show(h('h1', {}, 'Something went wrong'), h('p', { class: 'error' }, error.message));
  }
}

loginButton.addEventListener('click', () => login());
whenSessionEnds(say);
logoutButton.addEventListener('click', () => { logout(); route(); });
window.addEventListener('hashchange', route);

try {
  await completeLogin();
} catch (error) {
  say(error.message);
}
route();
