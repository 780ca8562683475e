// The public API, as the portal calls it: bearer token, JSON, problem+json errors.
import { canRenew, freshToken } from './auth.js';

export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.errors = problem.errors || [];
  }
}

export async function call(path, { method = 'GET', json, headers = {} } = {}) {
  const send = async (force) => {
    const options = { method, headers: { Accept: 'application/json', ...headers } };
    const bearer = await freshToken({ force });
    if (bearer) options.headers.Authorization = `Bearer ${bearer}`;
    if (json !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(json);
    }
    return fetch(path, options);
  };
  let answer = await send(false);
  // Refused (expired early, revoked, a clock ahead of ours): renew once and send it again;
  // a refused call did nothing.
  if (answer.status === 401 && canRenew()) answer = await send(true);
  if (!answer.ok) {
    let problem = {};
    try { problem = await answer.json(); } catch { problem = {}; }
    throw new ApiProblem(answer.status, problem);
  }
  const type = answer.headers.get('content-type') || '';
  if (type.includes('json')) return answer.json();
  return answer.text();
}
