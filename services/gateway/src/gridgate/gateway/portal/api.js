// The public API, as the portal calls it: bearer token, JSON, problem+json errors.
import { token } from './auth.js';

export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.errors = problem.errors || [];
  }
}

export async function call(path, { method = 'GET', json, headers = {} } = {}) {
  const options = { method, headers: { Accept: 'application/json', ...headers } };
  if (token()) options.headers.Authorization = `Bearer ${token()}`;
  if (json !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(json);
  }
  const answer = await fetch(path, options);
  if (!answer.ok) {
    let problem = {};
    try { problem = await answer.json(); } catch { problem = {}; }
    throw new ApiProblem(answer.status, problem);
  }
  const type = answer.headers.get('content-type') || '';
  if (type.includes('json')) return answer.json();
  return answer.text();
}
