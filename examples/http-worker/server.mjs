#!/usr/bin/env node
/**
 * A reference worker for the `http` runtime (README: Bring your own agent). No dependencies.
 *
 *   PORT=4000 SIGNING_SECRET=whsec_... node examples/http-worker/server.mjs
 *
 * It does what every worker must: verifies each request's signature (method, path, timestamp,
 * Idempotency-Key and body; at most 5 minutes old), refuses a replay of a request it has already
 * seen, runs a message and a stop once per Idempotency-Key (a repeat gets the first answer), and signs every
 * answer with the agent's secret (the service refuses an unsigned or altered one). It answers
 * messages (an echo after `metadata.workMs` ms of "work", or WORK_MS), stops a message's work on
 * `cancel`, and on `stop` saves the agent's state (a JSON file under STATE_DIR) and closes what it
 * holds for the agent. `GET /calls` lists the calls it received (never a secret). Secrets: SIGNING_SECRET
 * for every agent, or SIGNING_SECRETS_FILE, a JSON object agentId -> secret read on each request.
 * `metadata.behave` makes it misbehave on purpose, for demos and tests: "fail" (HTTP 500),
 * "badJson", "slow" (never answers).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

const port = Number(process.env.PORT ?? 4000);
const stateDir = process.env.STATE_DIR ?? '.worker-state';
const workMs = Number(process.env.WORK_MS ?? 0);
const TOLERANCE_S = 300;
/** How long a stop's answer is kept for a repeat of it (the service redelivers a force stop's close for about half an hour). */
const STOP_REMEMBERED_MS = 86_400_000;

/** Every call received, verified or not, for the demo's `GET /calls` (never the secret). */
const calls = [];
/**
 * Signatures seen inside the tolerance window -> when they expire: a second use is a replay. Kept
 * in a file under STATE_DIR as well (one line per signature, appended before the call is acted
 * on), so a request captured before a restart is still refused after it.
 */
const seenFile = join(stateDir, 'seen-signatures');
const seen = loadSeen(Date.now());
/** agentId/Idempotency-Key -> the answer given (status, body), kept as long as a signature lives. */
const answered = new Map();
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

const hmac = (secret, text) => createHmac('sha256', secret).update(text).digest('hex');

/**
 * `Agent-Signature: t=<unix seconds>,n=<nonce>,v1=<hex HMAC-SHA256(secret, "<t>.<n>.<METHOD>.<path>.<Idempotency-Key>.<raw body>")>`:
 * the v1 value when it is valid and fresh, else undefined.
 */
function verify(req, rawBody, secret) {
  const parts = Object.fromEntries(String(req.headers['agent-signature'] ?? '').split(',').map((p) => p.trim().split('=', 2)));
  const t = Number(parts.t);
  if (!secret || !Number.isInteger(t) || !parts.n || !/^[0-9a-f]{64}$/.test(parts.v1 ?? '') || Math.abs(Date.now() / 1000 - t) > TOLERANCE_S) return undefined;
  const expected = Buffer.from(hmac(secret, `${t}.${parts.n}.${req.method}.${req.url}.${req.headers['idempotency-key'] ?? ''}.${rawBody}`), 'hex');
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) ? parts.v1 : undefined;
}

function loadSeen(now) {
  mkdirSync(stateDir, { recursive: true });
  const kept = new Map();
  if (existsSync(seenFile)) {
    for (const line of readFileSync(seenFile, 'utf8').split('\n')) {
      const [v1, until] = line.split(' ');
      if (v1 && Number(until) >= now) kept.set(v1, Number(until));
    }
  }
  // Rewritten with only what is still inside the window.
  writeFileSync(seenFile, [...kept].map(([v1, until]) => `${v1} ${until}\n`).join(''));
  return kept;
}

/** Forget what is older than the tolerance window: no signature that old is accepted anyway. */
function prune(now) {
  for (const [v1, until] of seen) if (until < now) seen.delete(v1);
  for (const [key, answer] of answered) if (answer.until < now) answered.delete(key);
}

/** An answer, signed (when the request was) over the request's signature, the status and the body. */
const send = (res, status, body, signed) => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const headers = { 'content-type': 'application/json' };
  if (signed) headers['agent-signature'] = `v1=${hmac(signed.secret, `${signed.v1}.${status}.${text}`)}`;
  res.writeHead(status, headers);
  res.end(text);
};

async function onMessage(call, res, signed, key) {
  const { messageId, metadata = {} } = call;
  const before = answered.get(key);
  if (before && before.status === undefined) return send(res, 409, { error: `message ${messageId} is already running` }, signed);
  if (before) return send(res, before.status, before.body, signed);
  answered.set(key, { until: Date.now() + 2 * TOLERANCE_S * 1000 });
  const answer = (status, body) => {
    answered.set(key, { status, body, until: Date.now() + 2 * TOLERANCE_S * 1000 });
    send(res, status, body, signed);
  };
  if (metadata.behave === 'fail') return answer(500, { error: 'the agent crashed' });
  if (metadata.behave === 'badJson') return answer(200, '{"reply": ');
  if (metadata.behave === 'unsigned') return send(res, 200, { reply: `echo: ${call.text}` });
  const ms = metadata.behave === 'slow' ? 3_600_000 : Number(metadata.workMs ?? workMs);
  const finished = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(true), ms);
    running.set(messageId, () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  running.delete(messageId);
  if (!finished) return answer(409, { error: `message ${messageId} was cancelled` });
  handled.set(call.agentId, (handled.get(call.agentId) ?? 0) + 1);
  answer(200, { reply: `echo: ${call.text}` });
}

function onCancel(call, res, signed) {
  running.get(call.messageId)?.();
  send(res, 200, { cancelled: call.messageId }, signed);
}

function onStop(call, res, signed, key) {
  // Idempotent by stopId (the Idempotency-Key): a stop told again is answered as the first time,
  // and the state it saved is not saved over.
  const before = answered.get(key);
  if (before) return send(res, before.status, before.body, signed);
  // Save state, then close connections (this worker holds none beyond the messages above).
  mkdirSync(stateDir, { recursive: true });
  const state = { agentId: call.agentId, stopId: call.stopId, outcome: call.outcome, messagesHandled: handled.get(call.agentId) ?? 0, savedAt: Date.now() };
  writeFileSync(join(stateDir, `${call.agentId}.json`), JSON.stringify(state, null, 2));
  handled.delete(call.agentId);
  // Remembered once saved, for a day: a stop told again (a redelivered job) is not saved over.
  answered.set(key, { status: 200, body: { saved: true }, until: Date.now() + STOP_REMEMBERED_MS });
  send(res, 200, { saved: true }, signed);
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
    const secret = secretFor(call.agentId);
    const v1 = verify(req, raw, secret);
    const now = Date.now();
    prune(now);
    const replayed = v1 !== undefined && seen.has(v1);
    const verified = v1 !== undefined && !replayed;
    const entry = { type: call.type, agentId: call.agentId, messageId: call.messageId, stopId: call.stopId, outcome: call.outcome, idempotencyKey: req.headers['idempotency-key'], verified, replayed, at: now };
    calls.push(entry);
    console.log(JSON.stringify(entry));
    if (replayed) return send(res, 409, { error: 'replayed request: this signature was already used' });
    if (!verified) return send(res, 401, { error: 'bad signature' });
    seen.set(v1, now + 2 * TOLERANCE_S * 1000);
    appendFileSync(seenFile, `${v1} ${now + 2 * TOLERANCE_S * 1000}\n`);
    const signed = { secret, v1 };
    if (call.type === 'message') return void onMessage(call, res, signed, `${call.agentId}/${req.headers['idempotency-key'] ?? call.messageId}`);
    if (call.type === 'cancel') return onCancel(call, res, signed);
    if (call.type === 'stop') return onStop(call, res, signed, `${call.agentId}/${req.headers['idempotency-key'] ?? call.stopId}`);
    send(res, 400, { error: `unknown call type ${call.type}` }, signed);
  });
}).listen(port, '127.0.0.1', () => console.log(`http-worker on http://127.0.0.1:${port}`));
