#!/usr/bin/env node
/**
 * A reference worker for the `http` runtime (README: Bring your own agent). No dependencies.
 *
 *   PORT=4000 SIGNING_SECRET=whsec_... node examples/http-worker/server.mjs
 *
 * It verifies every request's signature, answers messages (an echo after `metadata.workMs` ms of
 * "work", or WORK_MS), stops a message's work on `cancel`, and on `stop` saves the agent's state
 * (a JSON file under STATE_DIR) and closes what it holds for the agent. Secrets: SIGNING_SECRET
 * for every agent, or SIGNING_SECRETS_FILE, a JSON object agentId -> secret read on each request.
 * `metadata.behave` makes it misbehave on purpose, for demos and tests: "fail" (HTTP 500),
 * "badJson", "slow" (never answers).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

const port = Number(process.env.PORT ?? 4000);
const stateDir = process.env.STATE_DIR ?? '.worker-state';
const workMs = Number(process.env.WORK_MS ?? 0);
const TOLERANCE_S = 300;

/** Every call received, verified or not, for the demo's `GET /calls` (never the secret). */
const calls = [];
/** messageId -> stop its work. */
const running = new Map();
/** agentId -> messages answered since the last stop: the state saved at stop. */
const handled = new Map();

function secretFor(agentId) {
  if (process.env.SIGNING_SECRETS_FILE) {
    const secrets = JSON.parse(readFileSync(process.env.SIGNING_SECRETS_FILE, 'utf8'));
    return secrets[agentId];
  }
  return process.env.SIGNING_SECRET;
}

/** `Agent-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. */
function verify(header, rawBody, secret) {
  const parts = Object.fromEntries(String(header ?? '').split(',').map((p) => p.trim().split('=', 2)));
  const t = Number(parts.t);
  if (!secret || !Number.isInteger(t) || !parts.v1 || Math.abs(Date.now() / 1000 - t) > TOLERANCE_S) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const send = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

async function onMessage(call, res) {
  const { messageId, metadata = {} } = call;
  if (metadata.behave === 'fail') return send(res, 500, { error: 'the agent crashed' });
  if (metadata.behave === 'badJson') return send(res, 200, '{"reply": ');
  const ms = metadata.behave === 'slow' ? 3_600_000 : Number(metadata.workMs ?? workMs);
  const finished = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(true), ms);
    running.set(messageId, () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  running.delete(messageId);
  if (!finished) return send(res, 409, { error: `message ${messageId} was cancelled` });
  handled.set(call.agentId, (handled.get(call.agentId) ?? 0) + 1);
  send(res, 200, { reply: `echo: ${call.text}` });
}

function onCancel(call, res) {
  running.get(call.messageId)?.();
  send(res, 200, { cancelled: call.messageId });
}

function onStop(call, res) {
  // Save state, then close connections (this worker holds none beyond the messages above).
  mkdirSync(stateDir, { recursive: true });
  const state = { agentId: call.agentId, stopId: call.stopId, outcome: call.outcome, messagesHandled: handled.get(call.agentId) ?? 0, savedAt: Date.now() };
  writeFileSync(join(stateDir, `${call.agentId}.json`), JSON.stringify(state, null, 2));
  handled.delete(call.agentId);
  send(res, 200, { saved: true });
}

createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/calls') return send(res, 200, calls);
  if (req.method !== 'POST') return send(res, 405, { error: 'POST only' });
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    let call;
    try {
      call = JSON.parse(raw);
    } catch {
      return send(res, 400, { error: 'body is not JSON' });
    }
    const verified = verify(req.headers['agent-signature'], raw, secretFor(call.agentId));
    calls.push({ type: call.type, agentId: call.agentId, messageId: call.messageId, stopId: call.stopId, outcome: call.outcome, idempotencyKey: req.headers['idempotency-key'], verified, at: Date.now() });
    if (!verified) return send(res, 401, { error: 'bad signature' });
    if (call.type === 'message') return void onMessage(call, res);
    if (call.type === 'cancel') return onCancel(call, res);
    if (call.type === 'stop') return onStop(call, res);
    send(res, 400, { error: `unknown call type ${call.type}` });
  });
}).listen(port, '127.0.0.1', () => console.log(`http-worker on http://127.0.0.1:${port}`));
