// A real OpenID Connect provider (panva/oidc-provider) for the SSO tests, on 127.0.0.1.
//
//   node server.mjs CONFIG.json      prints "LISTENING <port>" once it serves http://127.0.0.1:<port>
//
// CONFIG: {"clients": [{client_id, client_secret, redirect_uris, post_logout_redirect_uris?}], "users": {"alice": {password, email?, name,
// groups?, claims?}}} (claims: more claims as they are, e.g. hd, roles, realm_access). Users sign in through plain HTML forms (login, then consent) that a test POSTs.
// Test controls under /__test/ (loopback only, like everything here):
//   POST /__test/rotate              a new signing key (published first; the old one stays in the JWKS)
//   PUT  /__test/users/<id>          replace a user's claims (e.g. their groups)
//   POST /__test/next-id-token       {"aud": "...", "expOffset": -3600}: the next token response carries an ID
//                                    token with these claims changed, signed with the provider's own key (an IdP
//                                    issuing a token for another audience, or one already expired)
//   GET  /__test/log                 {"jwksFetches": n, "discoveryFetches": n, "signingKid": "..."}
import { readFileSync } from "node:fs";
import http from "node:http";
import { randomBytes } from "node:crypto";
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, SignJWT } from "jose";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const users = config.users;
const log = { jwksFetches: 0, discoveryFetches: 0, signingKid: "" };
let keys = [];
let nextIdToken = null;
let provider = null;
let issuer = "";

async function newKey() {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: `k-${randomBytes(6).toString("hex")}`, alg: "RS256", use: "sig" };
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res, status, body) {
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
  res.end(`<!doctype html><html><head><title>Test IdP</title></head><body>${body}</body></html>`);
}

function json(res, status, value) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(value));
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function build() {
  const instance = new Provider(issuer, {
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    })),
    jwks: { keys },
    cookies: { keys: ["test-idp-cookie-key-0123456789"] },
    // The scope claims go into the ID token too (as Entra ID, Okta and Keycloak's group mappers do).
    conformIdTokenClaims: false,
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      // Provider quirks the tests reproduce: Google's hd, Entra's preferred_username and group overage
      // (_claim_names / hasgroups), Keycloak's realm roles (realm_access.roles).
      profile: ["name", "hd", "preferred_username"],
      groups: ["groups", "roles", "realm_access", "_claim_names", "hasgroups"],
    },
    scopes: ["openid", "email", "profile", "groups"],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, id) {
      const user = users[id];
      if (!user) return undefined;
      return {
        accountId: id,
        async claims() {
          const claims = { sub: id, name: user.name, ...(user.claims ?? {}) };
          if (user.email) Object.assign(claims, { email: user.email, email_verified: user.email_verified ?? true });
          if (user.groups) claims.groups = user.groups;
          return claims;
        },
      };
    },
  });
  instance.use(async (ctx, next) => {
    if (ctx.path === "/jwks") log.jwksFetches += 1;
    if (ctx.path === "/.well-known/openid-configuration") log.discoveryFetches += 1;
    await next();
    if (ctx.path === "/token" && ctx.status === 200 && nextIdToken && ctx.body && ctx.body.id_token) {
      const change = nextIdToken;
      nextIdToken = null;
      const claims = decodeJwt(ctx.body.id_token);
      const header = decodeProtectedHeader(ctx.body.id_token);
      if (change.aud !== undefined) claims.aud = change.aud;
      if (change.expOffset !== undefined) {
        claims.exp += change.expOffset;
        claims.iat += change.expOffset;
      }
      const signing = keys.find((k) => k.kid === header.kid);
      const key = await importJWK(signing, "RS256");
      ctx.body = { ...ctx.body, id_token: await new SignJWT(claims).setProtectedHeader(header).sign(key) };
    }
  });
  return instance;
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, "<p>interaction mismatch</p>");
  const { prompt, params } = details;
  if (req.method === "GET") {
    if (prompt.name === "login") {
      return page(
        res,
        200,
        `<h1>Sign in</h1><form method="post" action="/interaction/${uid}/login">
<input name="login" autocomplete="username"><input name="password" type="password">
<button type="submit">Sign in</button></form>`,
      );
    }
    return page(
      res,
      200,
      `<h1>Authorize ${escapeHtml(params.client_id)}</h1><p>Scopes: ${escapeHtml(params.scope)}</p>
<form method="post" action="/interaction/${uid}/confirm"><button type="submit">Continue</button></form>`,
    );
  }
  const form = new URLSearchParams(await readBody(req));
  if (action === "login") {
    const id = form.get("login") || "";
    const user = users[id];
    if (!user || user.password !== form.get("password")) {
      return page(res, 401, "<p>Wrong username or password</p>");
    }
    return provider.interactionFinished(req, res, { login: { accountId: id } }, { mergeWithLastSubmission: false });
  }
  if (action === "confirm") {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(" "));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return page(res, 404, "<p>unknown interaction step</p>");
}

async function control(req, res, path) {
  if (req.method === "POST" && path === "/__test/rotate") {
    keys = [await newKey(), ...keys];
    log.signingKid = keys[0].kid;
    provider = build();
    return json(res, 200, { kid: keys[0].kid });
  }
  if (req.method === "PUT" && path.startsWith("/__test/users/")) {
    const id = decodeURIComponent(path.slice("/__test/users/".length));
    users[id] = JSON.parse(await readBody(req));
    return json(res, 200, users[id]);
  }
  if (req.method === "POST" && path === "/__test/next-id-token") {
    nextIdToken = JSON.parse(await readBody(req));
    return json(res, 200, nextIdToken);
  }
  if (req.method === "GET" && path === "/__test/log") return json(res, 200, log);
  return json(res, 404, { error: "unknown test control" });
}

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  try {
    if (path.startsWith("/__test/")) return await control(req, res, path);
    const match = path.match(/^\/interaction\/([^/]+)(?:\/(login|confirm))?$/);
    if (match) return await interaction(req, res, match[1], match[2]);
    return provider.callback()(req, res);
  } catch (error) {
    if (!res.headersSent) page(res, 500, `<p>${escapeHtml(error.message)}</p>`);
  }
});

server.listen(0, "127.0.0.1", async () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  keys = [await newKey()];
  log.signingKid = keys[0].kid;
  provider = build();
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
