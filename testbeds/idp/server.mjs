// gridgate testbed: a real OpenID Connect provider (panva/oidc-provider) that
// issues INDIGO-IAM-style RS256 JWT access tokens (kid header, keys published
// at the issuer's jwks_uri).  Testbed only: no persistence except the signing
// key, in-memory everything else, plain HTTP on 127.0.0.1.
//
// Environment:
//   GRIDGATE_IDP_PORT       listen port (default 9400)
//   GRIDGATE_TESTBED_DIR    state directory root (default <repo>/var/testbeds);
//                           the signing key lives in $GRIDGATE_TESTBED_DIR/idp/jwks.json

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import Provider, { errors } from 'oidc-provider';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const HOST = '127.0.0.1';
const PORT = Number.parseInt(process.env.GRIDGATE_IDP_PORT || '9400', 10);
const TESTBED_DIR = process.env.GRIDGATE_TESTBED_DIR || path.join(REPO, 'var', 'testbeds');
const STATE_DIR = path.join(TESTBED_DIR, 'idp');
const JWKS_PATH = path.join(STATE_DIR, 'jwks.json');
const ISSUER = `http://${HOST}:${PORT}`; // no trailing slash

// Resource indicators (RFC 8707) must be absolute URIs, so the resource is
// "urn:gridgate"; the `aud` claim of its tokens is the plain string "gridgate".
const RESOURCE = 'urn:gridgate';
const AUDIENCE = 'gridgate';
const RESOURCE_SCOPES = [
  'openid', 'profile', 'email', 'wlcg', 'wlcg.groups',
  'storage.read:/', 'storage.create:/', 'storage.modify:/',
  'compute.read', 'compute.create', 'compute.modify', 'compute.cancel',
].join(' ');
const DEFAULT_SCOPE = 'openid profile wlcg.groups';
// lifetime (s) of the access tokens it issues; short ones test the clients' renewal
const DEFAULT_TTL = Number(process.env.GRIDGATE_IDP_ACCESS_TOKEN_TTL || 600);
const MAX_TTL = 7 * 24 * 3600;

const CLIENT_ID = 'gridgate-test';
const CLIENT_SECRET = 'gridgate-test-secret';
// public client of `gridgate login` (OAuth 2.0 Device Authorization Grant, RFC 8628)
const CLI_CLIENT_ID = 'gridgate-cli';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
// public client of the web portal (authorization code + PKCE); its redirect URIs are the
// gateways' pages, e.g. "http://127.0.0.1:8000/" (space-separated)
const PORTAL_CLIENT_ID = 'gridgate-portal';
const PORTAL_REDIRECT_URIS = (process.env.GRIDGATE_IDP_PORTAL_REDIRECT_URIS || 'http://127.0.0.1:8000/')
  .split(/\s+/).filter(Boolean);
// DiracX's client (the IdP of a DiracX VO, testbeds/diracx): DiracX sends its users here with
// an authorization code request and PKCE, and takes back only the ID token; its redirect URIs
// are DiracX's device-flow and authorization-flow callbacks (space-separated)
const DIRACX_CLIENT_ID = 'diracx';
const DIRACX_REDIRECT_URIS = (process.env.GRIDGATE_IDP_DIRACX_REDIRECT_URIS
  || ['8710', '8720'].flatMap((port) => [
    `http://127.0.0.1:${port}/api/auth/device/complete`,
    `http://127.0.0.1:${port}/api/auth/authorize/complete`,
  ]).join(' '))
  .split(/\s+/).filter(Boolean);
// groups put into client_credentials tokens (no user behind them)
const CLIENT_GROUPS = { [CLIENT_ID]: ['cta', 'cta/production'] };
// known accounts (findAccount / default groups for tokens of these subjects)
const ACCOUNTS = {
  alice: ['cta', 'cta/production'],
  bob: ['cta'],
};
const accountGroups = (sub) => (Object.hasOwn(ACCOUNTS, sub) ? ACCOUNTS[sub] : undefined);

if (!Number.isInteger(PORT) || PORT <= 0 || PORT > 65535) {
  console.error(`invalid GRIDGATE_IDP_PORT: ${process.env.GRIDGATE_IDP_PORT}`);
  process.exit(2);
}

// ---------------------------------------------------------------- signing key

function jwkThumbprint({ e, n }) {
  // RFC 7638 thumbprint of an RSA key: members e, kty, n in lexicographic order
  const canonical = JSON.stringify({ e, kty: 'RSA', n });
  return crypto.createHash('sha256').update(canonical).digest('base64url');
}

function loadOrCreateJwks() {
  if (fs.existsSync(JWKS_PATH)) {
    const jwks = JSON.parse(fs.readFileSync(JWKS_PATH, 'utf8'));
    if (!Array.isArray(jwks.keys) || !jwks.keys.length || !jwks.keys.every((k) => k.kid && k.d)) {
      throw new Error(`${JWKS_PATH}: expected {"keys": [private JWKs with a kid]}`);
    }
    return jwks;
  }
  fs.mkdirSync(STATE_DIR, { recursive: true });
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const key = { kty: 'RSA', kid: jwkThumbprint(jwk), use: 'sig', alg: 'RS256', ...jwk };
  const jwks = { keys: [key] };
  const tmp = `${JWKS_PATH}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, JWKS_PATH);
  console.log(`generated RSA 2048 signing key kid=${key.kid} in ${JWKS_PATH}`);
  return jwks;
}

// ---------------------------------------------------------------- provider

const groupsFor = new WeakMap(); // token -> groups, set by /testbed/token

function groupClaims(groups) {
  return { groups: [...groups], 'wlcg.groups': groups.map((g) => `/${g}`) };
}

const resourceServerInfo = {
  scope: RESOURCE_SCOPES,
  audience: AUDIENCE,
  accessTokenTTL: DEFAULT_TTL,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: 'RS256' } },
};

const configuration = {
  jwks: loadOrCreateJwks(),
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }, {
    client_id: CLI_CLIENT_ID,
    grant_types: [DEVICE_GRANT, 'refresh_token'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'none',
  }, {
    client_id: PORTAL_CLIENT_ID,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: PORTAL_REDIRECT_URIS,
    token_endpoint_auth_method: 'none',
  }, {
    client_id: DIRACX_CLIENT_ID,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: DIRACX_REDIRECT_URIS,
    token_endpoint_auth_method: 'none',
  }],
  // not persisted: sessions/cookies do not need to survive a restart
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'wlcg', 'wlcg.groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    'wlcg.groups': ['groups', 'wlcg.groups'],
  },
  async findAccount(ctx, sub) {
    const groups = accountGroups(sub);
    if (!groups) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, name: sub, preferred_username: sub, ...groupClaims(groups) };
      },
    };
  },
  features: {
    // Browser logins use oidc-provider's development pages (any known account, any
    // password): enough for the device flow of `gridgate login`, tested by driving them.
    // Tokens without a browser: POST /testbed/token.
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // no `resource` parameter -> the gridgate resource server (JWT tokens)
      async defaultResource(ctx, client, oneOf) {
        return oneOf || RESOURCE;
      },
      async useGrantedResource() {
        return true;
      },
      async getResourceServerInfo(ctx, resourceIndicator) {
        if (resourceIndicator === RESOURCE) return resourceServerInfo;
        throw new errors.InvalidTarget(`unknown resource indicator; use ${RESOURCE}`);
      },
    },
  },
  async extraTokenClaims(ctx, token) {
    if (token.kind !== 'AccessToken' && token.kind !== 'ClientCredentials') return undefined;
    let groups = groupsFor.get(token);
    if (!groups && token.accountId) groups = accountGroups(token.accountId) || [];
    if (!groups) groups = (Object.hasOwn(CLIENT_GROUPS, token.clientId) && CLIENT_GROUPS[token.clientId]) || [];
    return groupClaims(groups);
  },
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || DEFAULT_TTL,
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || DEFAULT_TTL,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
  },
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const provider = new Provider(ISSUER, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));

// ---------------------------------------------------------------- testbed routes

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new HttpError(413, 'body too large');
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  if (!raw.trim()) return {};
  try {
    return JSON.parse(raw);
  } catch {
    throw new HttpError(400, 'body must be JSON');
  }
}

// Mint an access token through oidc-provider's own AccessToken model: the
// result is byte-for-byte what the provider issues from its token endpoint.
async function mintToken(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, 'body must be a JSON object');
  }
  const {
    sub, groups = accountGroups(body.sub) || [], ttl = DEFAULT_TTL, scope = DEFAULT_SCOPE, client_id: clientId = CLIENT_ID,
  } = body;
  if (typeof sub !== 'string' || !sub) throw new HttpError(400, '"sub" must be a non-empty string');
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string' && g && !g.startsWith('/'))) {
    throw new HttpError(400, '"groups" must be an array of non-empty strings without a leading "/"');
  }
  if (!Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_TTL) {
    throw new HttpError(400, `"ttl" must be an integer in 1..${MAX_TTL}`);
  }
  if (typeof scope !== 'string') throw new HttpError(400, '"scope" must be a string');
  const client = await provider.Client.find(clientId);
  if (!client) throw new HttpError(400, `unknown client_id ${clientId}`);

  const token = new provider.AccessToken({
    accountId: sub,
    client,
    scope: scope || undefined,
    resourceServer: new provider.ResourceServer(RESOURCE, resourceServerInfo),
    expiresIn: ttl,
    gty: 'testbed',
  });
  groupsFor.set(token, groups);
  const accessToken = await token.save(); // the JWT, since accessTokenFormat is 'jwt'
  return {
    access_token: accessToken,
    token_type: token.tokenType,
    expires_in: ttl,
    scope: token.scope,
  };
}

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

async function testbedRoute(req, res, pathname) {
  if (pathname === '/testbed/health') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' });
    return send(res, 200, { status: 'ok', issuer: ISSUER });
  }
  if (pathname === '/testbed/token') {
    if (req.method !== 'POST') return send(res, 405, { error: 'method not allowed' });
    try {
      return send(res, 200, await mintToken(await readJson(req)));
    } catch (err) {
      if (err instanceof HttpError) return send(res, err.status, { error: err.message });
      console.error('testbed token error', err);
      return send(res, 500, { error: String(err?.message || err) });
    }
  }
  return send(res, 404, { error: 'not found' });
}

const providerCallback = provider.callback();

const server = http.createServer((req, res) => {
  const { pathname } = new URL(req.url, ISSUER);
  if (pathname === '/testbed' || pathname.startsWith('/testbed/')) {
    testbedRoute(req, res, pathname).catch((err) => {
      console.error(err);
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    });
    return;
  }
  providerCallback(req, res);
});

server.on('error', (err) => {
  console.error(`cannot listen on ${HOST}:${PORT}: ${err.message}`);
  process.exit(1);
});

server.listen(PORT, HOST, () => {
  console.log(`oidc-provider testbed listening, issuer ${ISSUER}, kid ${configuration.jwks.keys.map((k) => k.kid).join(',')}`);
});

function shutdown(signal) {
  console.log(`received ${signal}, shutting down`);
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
