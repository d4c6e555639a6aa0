import { useEffect, useRef, useState } from 'preact/hooks';
import { errorText } from './api.js';

/** While the tab is hidden a view polls at most this often, and at once when it shows again. */
export const HIDDEN_POLL_MS = 30_000;

export interface Polled<T> {
  data?: T;
  /** The last poll's failure, as the API worded it (the data shown is then the last good one). */
  error?: string;
  refresh(): void;
}

/**
 * `load()` now and again every `everyMs` (or what it says of the last answer) while `key` stays
 * the same; one poll at a time.
 */
export function usePoll<T>(load: () => Promise<T>, everyMs: number | ((last: T | undefined) => number), key: string): Polled<T> {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  const [generation, setGeneration] = useState(0);
  const loader = useRef(load);
  loader.current = load;
  const pace = useRef(everyMs);
  pace.current = everyMs;
  useEffect(() => {
    let done = false;
    let running = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let last: T | undefined;
    const run = async () => {
      if (running || done) return;
      running = true;
      clearTimeout(timer);
      try {
        const data = await loader.current();
        last = data;
        if (!done) setState({ data });
      } catch (err) {
        if (!done) setState((s) => ({ ...s, error: errorText(err) }));
      } finally {
        running = false;
      }
      if (!done) schedule();
    };
    const schedule = () => {
      clearTimeout(timer);
      const ms = typeof pace.current === 'function' ? pace.current(last) : pace.current;
      timer = setTimeout(run, document.hidden ? Math.max(ms, HIDDEN_POLL_MS) : ms);
    };
    // Hidden: the next poll moves out to the hidden pace; shown again: poll at once.
    const onVisibility = () => {
      if (document.hidden) {
        if (!running) schedule();
      } else void run();
    };
    document.addEventListener('visibilitychange', onVisibility);
    void run();
    return () => {
      done = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [key, generation]);
  return { ...state, refresh: () => setGeneration((g) => g + 1) };
}

/** One user action at a time: `busy` while it runs, and its failure as the API worded it. */
export function useAction() {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const run = async (what: () => Promise<unknown>): Promise<void> => {
    setError(undefined);
    setBusy(true);
    try {
      await what();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return { error, setError, busy, run };
}
