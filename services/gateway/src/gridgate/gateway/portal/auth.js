// Login with OIDC authorization code + PKCE (RFC 7636) against the gateway's issuer.
// The tokens live in this module's memory only: never in localStorage or sessionStorage.
// Only the PKCE verifier, the state and the page to come back to are kept in
// sessionStorage, for the length of the redirect to the issuer and back.

let config = null;
let metadata = null;
let accessToken = null;
let claims = {};

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
    scope: 'openid profile wlcg.groups',
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
  const answer = await fetch(metadata.token_endpoint, { method: 'POST', body: form });
  const body = await answer.json();
  if (!answer.ok) throw new Error(`login failed: ${body.error_description || body.error}`);
  accessToken = body.access_token;
  try {
    claims = JSON.parse(atob(accessToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  } catch {
    claims = {};
  }
  return true;
}

export function logout() {
  accessToken = null;
  claims = {};
}

export function token() { return accessToken; }
export function user() { return claims; }
