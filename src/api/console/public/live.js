// Live data without reloading: each page polls the routes it shows, one request at a time (the
// next is timed from the end of the last, so a slow API is never asked twice at once), and stops
// while the tab is hidden. The Models page is also woken by the FinColl feed's long-poll, so a
// validation shows within a second (see models.js).
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export function usePoll(load, intervalMs, deps = []) {
  const [state, setState] = useState({ data: undefined, error: undefined });
  const timer = useRef(undefined);
  const alive = useRef(true);
  const run = useRef(async () => {});

  run.current = async () => {
    clearTimeout(timer.current);
    try {
      const data = await load();
      if (alive.current) setState({ data, error: undefined });
    } catch (error) {
      if (alive.current) setState((s) => ({ data: s.data, error }));
    }
    if (alive.current && document.visibilityState === 'visible') timer.current = setTimeout(() => run.current(), intervalMs);
  };

  useEffect(() => {
    alive.current = true;
    setState({ data: undefined, error: undefined });
    run.current();
    const onVisible = () => {
      if (document.visibilityState === 'visible') run.current();
      else clearTimeout(timer.current);
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      alive.current = false;
      clearTimeout(timer.current);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, deps);

  const refresh = useCallback(() => run.current(), []);
  return { ...state, refresh };
}
