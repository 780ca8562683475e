// Login with OIDC authorization code + PKCE (RFC 7636) against the gateway's issuer.
// The tokens live in this module's memory only: never in localStorage or sessionStorage.
// Only the PKCE verifier, the state and the page to come back to are kept in
// sessionStorage, for the length of the redirect to the issuer and back.
// The access token is renewed with the refresh token before it expires (a timer, and a
// check before each call, since browsers slow down the timers of hidden tabs).

let config = null;
let metadata = null;
let accessToken = null;
let refreshToken = null;
let expiresAt = 0; // ms since the epoch
let lead = 0; // renew this long (ms) before expiresAt
let renewal = null; // the renewal under way, shared by whoever needs the token meanwhile
let renewTimer = null;
let claims = {};
let onEnded = () => {};

const PENDING = 'gridgate.login';

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function loadConfig() {
  if (!config) {
    config = await (await fetch('/portal/config.json')).json();
    const discovery = `${config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    metadata = await (await fetch(discovery)).json();
  }
  return config;
}

function redirectUri() {
  return `${window.location.origin}/`;
}

export async function login() {
  await loadConfig();
  const verifier = randomString();
  const state = randomString();
  const challenge = base64url(
    await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, hash: window.location.hash }));
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: config.clientId,
    redirect_uri: redirectUri(),
    // offline_access: a refresh token, to renew the access token without leaving the
    // page. oidc-provider grants it only with an explicit consent (prompt=consent).
    scope: 'openid profile wlcg.groups offline_access',
    prompt: 'consent',
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  if (config.resource) query.set('resource', config.resource);
  window.location.assign(`${metadata.authorization_endpoint}?${query}`);
}

// Back from the issuer with ?code=&state=: trade the code for tokens, clean the URL.
export async function completeLogin() {
  const params = new URLSearchParams(window.location.search);
  if (!params.has('code') && !params.has('error')) return false;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  window.history.replaceState(null, '', `/${pending?.hash || '#/workflows'}`);
  if (params.has('error')) throw new Error(`login refused: ${params.get('error')}`);
  if (!pending || params.get('state') !== pending.state) throw new Error('login state mismatch');
  await loadConfig();
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: params.get('code'),
    redirect_uri: redirectUri(),
    client_id: config.clientId,
    code_verifier: pending.verifier,
  });
  if (config.resource) form.set('resource', config.resource);
  keep(await tokenRequest(form, 'login failed'));
  return true;
}

async function tokenRequest(form, failure) {
  const answer = await fetch(metadata.token_endpoint, { method: 'POST', body: form });
  const body = await answer.json();
  if (!answer.ok) throw new Error(`${failure}: ${body.error_description || body.error}`);
  return body;
}

function keep(body) {
  accessToken = body.access_token;
  refreshToken = body.refresh_token || refreshToken; // rotated by issuers that rotate it
  try {
    claims = JSON.parse(atob(accessToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  } catch {
    claims = {};
  }
  const lifetime = 1000 * (body.expires_in || (claims.exp ? claims.exp - Date.now() / 1000 : 300));
  expiresAt = Date.now() + lifetime;
  lead = Math.min(60000, lifetime / 4);
  clearTimeout(renewTimer);
  if (refreshToken) {
    renewTimer = setTimeout(() => { freshToken().catch(() => {}); }, Math.max(0, lifetime - lead));
  }
}

async function renew() {
  const form = new URLSearchParams({
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_id: config.clientId,
  });
  if (config.resource) form.set('resource', config.resource);
  try {
    keep(await tokenRequest(form, 'renewal refused'));
  } catch (error) {
    // The issuer's session or grant ended: the token serves until it expires, then the
    // API's 401 asks for a new login.
    refreshToken = null;
    onEnded(`Your session could not be renewed (${error.message}); log in again soon.`);
    throw error;
  }
}

// The access token, renewed first when it is about to expire (or `force`: the API refused it).
export async function freshToken({ force = false } = {}) {
  if (refreshToken && (force || Date.now() >= expiresAt - lead)) {
    renewal = renewal || renew().finally(() => { renewal = null; });
    try { await renewal; } catch { /* keep the token we have */ }
  }
  return accessToken;
}

export function canRenew() { return Boolean(refreshToken); }

export function whenSessionEnds(callback) { onEnded = callback; }

export function logout() {
  accessToken = null;
  refreshToken = null;
  clearTimeout(renewTimer);
  claims = {};
}

export function token() { return accessToken; }
export function user() { return claims; }
