/**
 * The operator console: the fleet (counts, the list, fleet stops) and one agent (its stop as it
 * drains, its actions and history), over the API on this page's origin.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, apiKey, call, unauthorized } from './api.js';
import { AgentPage } from './agent.js';
import { FleetPage } from './fleet.js';
import { useAction } from './poll.js';
import { ErrorLine } from './ui.js';

const route = (): { page: 'fleet' } | { page: 'agent'; agentId: string } => {
  const m = /^#\/agents\/([^/?#]+)$/.exec(location.hash);
  return m ? { page: 'agent', agentId: decodeURIComponent(m[1]!) } : { page: 'fleet' };
};

/** Asks for a key, checks it against the API and keeps it for this tab only. */
function KeyPrompt({ refused, onKey }: { refused?: string | undefined; onKey: () => void }) {
  const [key, setKey] = useState('');
  const { error, busy, run } = useAction();
  const submit = () =>
    run(async () => {
      apiKey.set(key.trim());
      try {
        await call(api.GET('/agents/counts'));
      } catch (err) {
        apiKey.clear();
        throw err;
      }
      onKey();
    });
  return (
    <main class="narrow">
      <h1>API key</h1>
      <p>This service requires an API key. The console keeps it for this tab only and sends it only to this API.</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label>
          API key <input type="password" autoComplete="off" required value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        </label>{' '}
        <button type="submit" class="primary" disabled={busy || key.trim() === ''}>
          Use this key
        </button>
      </form>
      <ErrorLine text={error ?? refused} />
    </main>
  );
}

function App() {
  const [where, setWhere] = useState(route);
  const [prompt, setPrompt] = useState<{ refused?: string } | undefined>();
  useEffect(() => {
    const onHash = () => setWhere(route());
    const onUnauthorized = () => {
      const had = apiKey.get();
      apiKey.clear();
      setPrompt({ ...(had && { refused: 'The API refused the key: enter a valid one.' }) });
    };
    addEventListener('hashchange', onHash);
    unauthorized.addEventListener('unauthorized', onUnauthorized);
    return () => {
      removeEventListener('hashchange', onHash);
      unauthorized.removeEventListener('unauthorized', onUnauthorized);
    };
  }, []);
  return (
    <>
      <header>
        <a href="#/" class="brand">
          Agents console
        </a>
        <nav aria-label="Main">
          <a href="#/">Fleet</a> <a href="/docs">API reference</a>
          {apiKey.get() && (
            <button
              type="button"
              class="link"
              onClick={() => {
                apiKey.clear();
                setPrompt({});
              }}
            >
              Forget key
            </button>
          )}
        </nav>
      </header>
      {prompt ? (
        <KeyPrompt refused={prompt.refused} onKey={() => setPrompt(undefined)} />
      ) : where.page === 'agent' ? (
        <AgentPage key={where.agentId} agentId={where.agentId} />
      ) : (
        <FleetPage />
      )}
    </>
  );
}

const root = document.getElementById('app')!;
root.replaceChildren(); // the "Loading" line the page shows until the script runs
render(<App />, root);
