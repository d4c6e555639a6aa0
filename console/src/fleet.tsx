import { useState } from 'preact/hooks';
import { api, call, type Agent, type AgentStatus, type FleetStop } from './api.js';
import { MAX_TIMEOUT_S, plural, timeoutMs, when } from './format.js';
import { useAction, usePoll } from './poll.js';
import { ConfirmForce, ErrorLine, Section, StatusBadge } from './ui.js';

const PAGE = 100;
const COUNTS_POLL_MS = 5_000;
const LIST_POLL_MS = 5_000;
const FLEET_STOP_POLL_MS = 1_000;
/** The API takes at most this many ids in one fleet stop. */
const MAX_IDS = 1_000;

type Filter = AgentStatus | 'all';
const FILTERS: readonly Filter[] = ['all', 'active', 'stopping', 'inactive'];

/** The loaded pages of the list, in order, each fetched with the cursor the one before it gave. */
async function loadPages(filter: Filter, pages: number): Promise<{ agents: Agent[]; nextCursor: string | null }> {
  const agents: Agent[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < pages; i++) {
    const query: { limit: number; status?: AgentStatus; cursor?: string } = { limit: PAGE, ...(filter !== 'all' && { status: filter }), ...(cursor && { cursor }) };
    const page = await call(api.GET('/agents', { params: { query } }));
    agents.push(...page.data);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return { agents, nextCursor: cursor };
}

function Counts() {
  const counts = usePoll(async () => (await call(api.GET('/agents/counts'))).data, COUNTS_POLL_MS, 'counts');
  const c = counts.data;
  return (
    <Section title="Fleet" label="Counts by status">
      <dl class="counts">
        {(['active', 'stopping', 'inactive', 'total'] as const).map((name) => (
          <div key={name} class={`count count-${name}`}>
            <dt>{name}</dt>
            <dd data-count={name}>{c ? c[name] : '…'}</dd>
          </div>
        ))}
      </dl>
      <ErrorLine text={counts.error} />
    </Section>
  );
}

function FleetStopProgress({ operationId }: { operationId: string }) {
  const op = usePoll(
    async () => (await call(api.GET('/fleet-stops/{operationId}', { params: { path: { operationId } } }))).data,
    FLEET_STOP_POLL_MS,
    operationId,
  );
  const f = op.data;
  if (!f) return <p aria-live="polite">Fleet stop {operationId} started…</p>;
  const { counts } = f;
  return (
    <div class="progress" aria-live="polite" aria-label="Fleet stop progress">
      <p>
        <strong data-fleet-status>{f.status}</strong>: <span data-fleet-stopped>{counts.stopped}</span> of {counts.selected} stopped
        {f.done ? '' : `, ${counts.inProgress} in progress`}
      </p>
      <progress max={Math.max(1, counts.selected)} value={counts.stopped + counts.failed} />
      <p class="muted">
        drained {counts.drained} · timed out {counts.timed_out} · forced {counts.forced} · failed {counts.failed}
        {f.graceful ? ` · graceful, timeout ${f.timeout / 1000} s` : ' · force'}
      </p>
      {f.failure && <ErrorLine text={`The fleet stop failed: ${JSON.stringify(f.failure)}`} />}
      {f.failures.length > 0 && (
        <details open>
          <summary>{plural(f.failures.length, 'failure')}</summary>
          <ul>
            {f.failures.map((x) => (
              <li key={x.agentId}>
                <a href={`#/agents/${x.agentId}`}>{x.agentId}</a>: {x.error}
              </li>
            ))}
          </ul>
        </details>
      )}
      <ErrorLine text={op.error} />
    </div>
  );
}

/** `every`: the status a fleet stop can select on the server (the list's filter when it is stopping: escalating drains). */
function FleetStopForm({ selected, every, onStarted }: { selected: string[]; every: 'active' | 'stopping'; onStarted: (op: FleetStop) => void }) {
  const [target, setTarget] = useState<'selected' | 'status'>('selected');
  const everyOne = `every ${every} agent`;
  const [graceful, setGraceful] = useState(true);
  const [seconds, setSeconds] = useState('30');
  const [confirming, setConfirming] = useState(false);
  const { error, setError, busy, run } = useAction();

  const submit = () => {
    setError(undefined);
    const timeout = timeoutMs(seconds);
    if (graceful && typeof timeout === 'string') return setError(timeout);
    if (target === 'selected' && selected.length === 0) return setError(`Select agents in the list first, or choose "${everyOne}".`);
    if (target === 'selected' && selected.length > MAX_IDS) {
      return setError(`A fleet stop takes at most ${MAX_IDS} agents by id: select fewer, or stop ${everyOne}.`);
    }
    if (!graceful && !confirming) return setConfirming(true);
    setConfirming(false);
    const selector = target === 'status' ? { status: every } : { agentIds: selected };
    const body = { ...selector, graceful, ...(graceful && { timeout: timeout as number }) };
    return void run(async () => {
      const op = await call(api.POST('/agents/stop', { params: { header: { 'Idempotency-Key': crypto.randomUUID() } }, body }));
      onStarted(op.data);
    });
  };

  return (
    <form
      class="fleet-stop"
      aria-label="Fleet stop"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <fieldset>
        <legend>Stop</legend>
        <label>
          <input type="radio" name="target" checked={target === 'selected'} onChange={() => setTarget('selected')} /> the selected agents ({selected.length})
        </label>
        <label>
          <input type="radio" name="target" checked={target === 'status'} onChange={() => setTarget('status')} /> {everyOne}
        </label>
      </fieldset>
      <fieldset>
        <legend>How</legend>
        <label>
          <input type="radio" name="mode" checked={graceful} onChange={() => setGraceful(true)} /> gracefully, draining for up to
        </label>
        <label class="inline">
          <input type="number" min="0" max={MAX_TIMEOUT_S} step="1" value={seconds} disabled={!graceful} onInput={(e) => setSeconds(e.currentTarget.value)} aria-label="Fleet stop timeout in seconds" /> seconds
        </label>
        <label>
          <input type="radio" name="mode" checked={!graceful} onChange={() => setGraceful(false)} /> force: interrupt what is in progress
        </label>
      </fieldset>
      {confirming ? (
        <ConfirmForce
          question={`Force-stop ${target === 'status' ? everyOne : plural(selected.length, 'agent')}? Their messages in progress are interrupted.`}
          onConfirm={submit}
          onCancel={() => setConfirming(false)}
        />
      ) : (
        <button type="submit" class={graceful ? 'primary' : 'danger'} disabled={busy}>
          {target === 'status' ? `Stop ${everyOne}` : `Stop ${plural(selected.length, 'agent')}`}
        </button>
      )}
      <ErrorLine text={error} />
    </form>
  );
}

export function FleetPage() {
  const [filter, setFilter] = useState<Filter>('all');
  const [pages, setPages] = useState(1);
  const [search, setSearch] = useState('');
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [operation, setOperation] = useState<string>();
  const list = usePoll(() => loadPages(filter, pages), LIST_POLL_MS, `${filter}:${pages}`);
  const loaded = list.data?.agents ?? [];
  const needle = search.trim().toLowerCase();
  const shown = needle ? loaded.filter((a) => a.name.toLowerCase().includes(needle)) : loaded;
  const more = Boolean(list.data?.nextCursor);
  const allShownSelected = shown.length > 0 && shown.every((a) => selected.has(a.agentId));
  const toggle = (ids: string[], on: boolean) =>
    setSelected((s) => {
      const next = new Set(s);
      for (const id of ids) {
        if (on) next.add(id);
        else next.delete(id);
      }
      return next;
    });

  return (
    <main>
      <Counts />
      <Section title="Stop several agents">
        <FleetStopForm selected={[...selected]} every={filter === 'stopping' ? 'stopping' : 'active'} onStarted={(op) => setOperation(op.operationId)} />
        {operation && <FleetStopProgress operationId={operation} />}
      </Section>
      <Section title="Agents">
        <div class="filters">
          <label for="status-filter">Status</label>
          <select
            id="status-filter"
            value={filter}
            onChange={(e) => {
              setFilter(e.currentTarget.value as Filter);
              setPages(1);
            }}
          >
            {FILTERS.map((f) => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>
          <label for="name-search">Name</label>
          <input id="name-search" type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} placeholder="search loaded agents" />
        </div>
        <p class="muted" aria-live="polite" data-list-summary>
          {list.data === undefined
            ? 'Loading…'
            : needle
              ? `${plural(shown.length, 'match', 'matches')} among ${plural(loaded.length, 'loaded agent')}.`
              : `${plural(loaded.length, 'agent')} loaded.`}
          {more && ' More agents are not loaded yet: load more to see and search them.'}
          {selected.size > 0 && ` ${selected.size} selected.`}
        </p>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">
                  <input type="checkbox" aria-label="Select every agent shown" checked={allShownSelected} onChange={(e) => toggle(shown.map((a) => a.agentId), e.currentTarget.checked)} />
                </th>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">In flight</th>
                <th scope="col">Runtime</th>
                <th scope="col">Last activity</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((a) => (
                <tr key={a.agentId} data-agent={a.agentId}>
                  <td>
                    <input type="checkbox" aria-label={`Select ${a.name}`} checked={selected.has(a.agentId)} onChange={(e) => toggle([a.agentId], e.currentTarget.checked)} />
                  </td>
                  <td>
                    <a href={`#/agents/${a.agentId}`}>{a.name}</a>
                  </td>
                  <td>
                    <StatusBadge status={a.status} />
                  </td>
                  <td>{a.inFlight}</td>
                  <td>{a.runtime?.type ?? 'echo'}</td>
                  <td>{when(a.lastActivityAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {more && (
          <button type="button" onClick={() => setPages((p) => p + 1)}>
            Load more
          </button>
        )}
        <ErrorLine text={list.error} />
      </Section>
    </main>
  );
}
