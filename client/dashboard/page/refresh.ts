/// <reference lib="dom" />
/**
 * Keeps one view fresh: a `setTimeout` chain (the next load is scheduled only once the last one settled, so a
 * view never has two requests in flight), paused while the tab is hidden, backing off on errors, and telling
 * the reader how fresh the view is ("updated 3 s ago", "offline").
 */

const MAX_BACKOFF_MS = 60_000;

export interface Refresher {
  /** Load now (after the load in flight, if any), then carry on with the chain. */
  now(): void;
  stop(): void;
}

export function startRefresh(
  load: (signal: AbortSignal) => Promise<void>,
  { intervalMs, freshness }: { readonly intervalMs: number; readonly freshness: HTMLElement },
): Refresher {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let again = false;
  let failures = 0;
  let lastOk: number | undefined;
  let stopped = false;

  const say = () => {
    let text: string;
    if (failures > 0) text = `offline (retrying; last update ${ago()})`;
    else if (document.hidden) text = 'paused while hidden';
    else text = lastOk === undefined ? 'loading…' : `updated ${ago()}`;
    if (freshness.textContent !== text) freshness.textContent = text;
  };
  const ago = () => (lastOk === undefined ? 'never' : `${Math.round((Date.now() - lastOk) / 1000)} s ago`);

  async function run(): Promise<void> {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    clearTimeout(timer);
    timer = undefined;
    // Hidden: no request at all; becoming visible loads at once.
    if (document.hidden) return say();
    running = true;
    try {
      await load(controller.signal);
      failures = 0;
      lastOk = Date.now();
    } catch (error) {
      if (stopped) return;
      failures += 1;
      console.warn('Refresh failed', error);
    } finally {
      running = false;
    }
    say();
    if (stopped) return;
    if (again) {
      again = false;
      void run();
      return;
    }
    const delay = failures === 0 ? intervalMs : Math.min(intervalMs * 2 ** failures, MAX_BACKOFF_MS);
    timer = setTimeout(() => void run(), delay);
  }

  const onVisibility = () => {
    if (!document.hidden && timer === undefined && !running) void run();
    say();
  };
  document.addEventListener('visibilitychange', onVisibility);
  const ticker = setInterval(say, 1_000);
  void run();

  return {
    now: () => void run(),
    stop() {
      stopped = true;
      controller.abort();
      clearTimeout(timer);
      clearInterval(ticker);
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
