import { useEffect, useRef, useState } from 'preact/hooks';
import { api, call, errorText, serverNow, type Agent, type Message, type StopRecord } from './api.js';
import { MAX_TIMEOUT_S, duration, plural, timeoutMs, when } from './format.js';
import { useAction, usePoll } from './poll.js';
import { ConfirmForce, ErrorLine, Section, StatusBadge, TableHead } from './ui.js';

const STOPPING_POLL_MS = 1_000;
const AGENT_POLL_MS = 3_000;
const HISTORY_POLL_MS = 5_000;
const HISTORY = 20;

/** Seconds left until the deadline, on the server's clock, ticking each second. */
function Countdown({ deadline }: { deadline: number }) {
  const [now, setNow] = useState(serverNow());
  useEffect(() => {
    const timer = setInterval(() => setNow(serverNow()), 250);
    return () => clearInterval(timer);
  }, []);
  const left = deadline - now;
  return (
    <span data-countdown role="timer" aria-live="off">
      {left > 0 ? `${duration(left)} left` : 'deadline reached: finishing'}
    </span>
  );
}

function Config({ agent }: { agent: Agent }) {
  const runtime = agent.runtime ?? { type: 'echo' as const };
  return (
    <dl class="config">
      <dt>Agent id</dt>
      <dd>
        <code>{agent.agentId}</code>
      </dd>
      {agent.description && (
        <>
          <dt>Description</dt>
          <dd>{agent.description}</dd>
        </>
      )}
      <dt>Runtime</dt>
      <dd>
        <pre>{JSON.stringify(runtime, null, 2)}</pre>
      </dd>
      <dt>Idle timeout</dt>
      <dd>{agent.idleTimeoutMs == null ? 'the service default' : duration(agent.idleTimeoutMs)}</dd>
      <dt>Settings</dt>
      <dd>
        <pre>{JSON.stringify(agent.settings ?? {}, null, 2)}</pre>
      </dd>
      <dt>Created</dt>
      <dd>{when(agent.createdAt)}</dd>
      <dt>Started</dt>
      <dd>{when(agent.startedAt)}</dd>
      <dt>Stopped</dt>
      <dd>{when(agent.stoppedAt)}</dd>
      <dt>Version</dt>
      <dd>{agent.version}</dd>
    </dl>
  );
}

function Actions({ agent, changed }: { agent: Agent; changed: () => void }) {
  const [seconds, setSeconds] = useState('30');
  const [confirming, setConfirming] = useState(false);
  const { error, setError, busy, run } = useAction();
  const agentId = agent.agentId;
  const act = (what: () => Promise<unknown>) =>
    void run(async () => {
      await what();
      changed();
    });
  const stop = (graceful: boolean) => {
    const timeout = timeoutMs(seconds);
    if (graceful && typeof timeout === 'string') {
      setError(timeout);
      return;
    }
    setConfirming(false);
    act(() =>
      call(
        api.POST('/agents/{agentId}/stop', {
          params: { path: { agentId }, header: { Prefer: 'respond-async' } },
          body: graceful ? { graceful, timeout: timeout as number } : { graceful },
        }),
      ),
    );
  };
  return (
    <div class="actions">
      {agent.status === 'inactive' && (
        <button type="button" class="primary" disabled={busy} onClick={() => act(() => call(api.POST('/agents/{agentId}/start', { params: { path: { agentId } } })))}>
          Start
        </button>
      )}
      {agent.status === 'active' && (
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            stop(true);
          }}
        >
          <label>
            Timeout (seconds){' '}
            <input type="number" min="0" max={MAX_TIMEOUT_S} step="1" value={seconds} onInput={(e) => setSeconds(e.currentTarget.value)} />
          </label>{' '}
          <button type="submit" class="primary" disabled={busy}>
            Stop gracefully
          </button>
        </form>
      )}
      {agent.status !== 'inactive' &&
        (confirming ? (
          <ConfirmForce
            question={`Force-stop ${agent.name} now? ${plural(agent.inFlight, 'message')} in progress will be interrupted.`}
            onConfirm={() => stop(false)}
            onCancel={() => setConfirming(false)}
          />
        ) : (
          <button type="button" class="danger" disabled={busy} onClick={() => setConfirming(true)}>
            Force stop
          </button>
        ))}
      <ErrorLine text={error} />
    </div>
  );
}

function SendMessage({ agentId, sent }: { agentId: string; sent: () => void }) {
  const [text, setText] = useState('');
  const [async, setAsync] = useState(false);
  const [result, setResult] = useState<Message>();
  const { error, setError, busy, run } = useAction();
  const watched = result?.status === 'processing' ? result.messageId : undefined;
  useEffect(() => {
    if (!watched) return;
    const timer = setInterval(() => {
      call(api.GET('/agents/{agentId}/messages/{messageId}', { params: { path: { agentId, messageId: watched } } })).then(
        (m) => setResult(m.data),
        (err: unknown) => setError(errorText(err)),
      );
    }, 1_000);
    return () => clearInterval(timer);
  }, [agentId, watched]);
  const send = () =>
    run(async () => {
      setResult(undefined);
      const answer = await call(
        api.POST('/agents/{agentId}/messages', { params: { path: { agentId }, ...(async && { header: { Prefer: 'respond-async' } }) }, body: { text } }),
      );
      setResult(answer.data);
      sent();
    });
  return (
    <form
      class="send"
      aria-label="Send a message"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      <label>
        Message
        <textarea rows={3} required value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      <label>
        <input type="checkbox" checked={async} onChange={(e) => setAsync(e.currentTarget.checked)} /> asynchronously (answer at once, then watch it)
      </label>
      <button type="submit" disabled={busy || text.length === 0}>
        {busy ? 'Sending…' : 'Send'}
      </button>
      {result && (
        <p aria-live="polite" data-sent={result.status}>
          Message <code>{result.messageId}</code>: {result.status}
          {result.reply !== undefined && <> — reply: {result.reply}</>}
          {result.error && <> — {result.error}</>}
        </p>
      )}
      <ErrorLine text={error} />
    </form>
  );
}

/** What each outcome word means, as the API document says it. */
const OUTCOME_MEANING: Record<StopRecord['outcome'], string> = {
  drained: 'The stop cut nothing: every message in flight ended on its own before the deadline (completed, or failed: see Failed)',
  timed_out: 'The timeout cut messages short: see Interrupted',
  forced: 'A force stop: whatever was in flight was cut',
};

const Ids = ({ ids }: { ids?: string[] | undefined }) => (ids && ids.length > 0 ? <code>{ids.join(', ')}</code> : <>—</>);

function StopHistory({ stops }: { stops: StopRecord[] }) {
  if (stops.length === 0) return <p class="muted">No stop yet.</p>;
  return (
    <div class="table-wrap">
      <table aria-label="Stop history">
        <TableHead columns={['Stopped', 'Outcome', 'Reason', 'Mode', 'Took', 'Drained', 'Interrupted', 'Failed']} />
        <tbody>
          {stops.map((s) => (
            <tr key={s.stopId} data-stop={s.stopId}>
              <td>{when(s.stoppedAt)}</td>
              <td data-outcome title={OUTCOME_MEANING[s.outcome]}>
                {s.outcome}
              </td>
              <td>{s.reason}</td>
              <td>{s.graceful ? `graceful, ${duration(s.timeoutMs)}` : 'force'}</td>
              <td>{duration(s.durationMs)}</td>
              <td>
                {s.drained} <Ids ids={s.drainedMessageIds} />
              </td>
              <td data-interrupted>
                {s.interrupted} <Ids ids={s.interruptedMessageIds} />
              </td>
              <td>
                {s.failed} <Ids ids={s.failedMessageIds} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function MessageHistory({ messages }: { messages: Message[] }) {
  if (messages.length === 0) return <p class="muted">No message yet.</p>;
  return (
    <div class="table-wrap">
      <table aria-label="Message history">
        <TableHead columns={['Sent', 'Id', 'Status', 'Text', 'Reply or error']} />
        <tbody>
          {messages.map((m) => (
            <tr key={m.messageId} data-message={m.messageId}>
              <td>{when(m.createdAt)}</td>
              <td>
                <code>{m.messageId}</code>
              </td>
              <td data-status>{m.status}</td>
              <td class="clip">{m.text}</td>
              <td class="clip">{m.reply ?? m.error ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function AgentPage({ agentId }: { agentId: string }) {
  const agent = usePoll(
    async () => (await call(api.GET('/agents/{agentId}', { params: { path: { agentId } } }))).data,
    (last) => (last?.status === 'stopping' ? STOPPING_POLL_MS : AGENT_POLL_MS),
    agentId,
  );
  const history = usePoll(
    async () => {
      const [messages, stops] = await Promise.all([
        call(api.GET('/agents/{agentId}/messages', { params: { path: { agentId }, query: { limit: HISTORY } } })),
        call(api.GET('/agents/{agentId}/stops', { params: { path: { agentId }, query: { limit: HISTORY } } })),
      ]);
      return { messages: messages.data, stops: stops.data };
    },
    HISTORY_POLL_MS,
    agentId,
  );
  const a = agent.data;
  // A new status may come with a new stop record or settled messages: fetch them now (not on the
  // first answer, which the history's own first poll covers).
  const seenStatus = useRef<string | undefined>(undefined);
  useEffect(() => {
    if (seenStatus.current !== undefined && seenStatus.current !== a?.status) history.refresh();
    seenStatus.current = a?.status;
  }, [a?.status]);
  const refresh = () => {
    agent.refresh();
    history.refresh();
  };
  if (!a) {
    return (
      <main>
        <p>{agent.error ? '' : 'Loading…'}</p>
        <ErrorLine text={agent.error} />
        <a href="#/">Back to the fleet</a>
      </main>
    );
  }
  const stop = a.status === 'stopping' ? a.stop : undefined;
  const drainedSoFar = stop ? (history.data?.messages ?? []).filter((m) => m.status === 'completed' && (m.completedAt ?? 0) >= stop.requestedAt).length : 0;
  return (
    <main>
      <p>
        <a href="#/">← Fleet</a>
      </p>
      <h1>
        {a.name} <StatusBadge status={a.status} />
      </h1>
      <p aria-live="polite" data-in-flight={a.inFlight}>
        {plural(a.inFlight, 'message')} in flight · last activity {when(a.lastActivityAt)}
      </p>
      {stop && (
        <div class="progress" role="status" aria-label="Stop in progress">
          <p>
            <strong>{stop.graceful ? 'Draining' : 'Force-stopping'}</strong> ({stop.reason}): <Countdown deadline={stop.deadline} /> · deadline{' '}
            {when(stop.deadline)}
          </p>
          <p>
            Leases left: <span data-leases>{a.inFlight}</span> · drained so far: <span data-drained>{drainedSoFar}</span>
          </p>
          {stop.failure && <ErrorLine text={`The stop's workflow failed: ${stop.failure.error}: ${stop.failure.cause}`} />}
        </div>
      )}
      <Actions agent={a} changed={refresh} />
      <ErrorLine text={agent.error} />
      {a.status === 'active' && (
        <Section title="Send a message">
          <SendMessage agentId={agentId} sent={refresh} />
        </Section>
      )}
      <Section title="Stops">
        <StopHistory stops={history.data?.stops ?? []} />
      </Section>
      <Section title="Messages">
        <MessageHistory messages={history.data?.messages ?? []} />
      </Section>
      <Section title="Configuration">
        <Config agent={a} />
      </Section>
      <ErrorLine text={history.error} />
    </main>
  );
}
