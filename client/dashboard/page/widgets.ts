/// <reference lib="dom" />
/** What the list and the task page both show: a state badge, the stacked bar, rates and times. */
import { h } from './dom';

export interface Counts {
  readonly attempted: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
}

/** The state in words (never colour alone), its colour from the stylesheet. */
export function badge(state: string, cancelRequested = false): HTMLElement {
  const label = state === 'PROGRESS' && cancelRequested ? 'CANCELING' : state;
  return h('span', { class: `badge badge-${label.toLowerCase()}` }, label);
}

/** Items succeeded, failed and skipped (ended subtasks' and running ones'), against the job's total. */
export function stackedBar(ended: Counts, running: Counts, total: number): HTMLElement {
  const succeeded = ended.succeeded + running.succeeded;
  const failed = ended.failed + running.failed;
  const skipped = ended.skipped + running.skipped;
  const whole = Math.max(total, succeeded + failed + skipped, 1);
  const label = `${succeeded} succeeded, ${failed} failed, ${skipped} skipped of ${total}`;
  const segment = (kind: string, value: number) => {
    const part = h('span', { class: `bar-${kind}` });
    // CSSOM, not a style attribute: the page's Content-Security-Policy allows no inline styles.
    part.style.width = `${(100 * value) / whole}%`;
    return part;
  };
  return h(
    'span',
    { class: 'bar', role: 'img', 'aria-label': label, title: label },
    segment('succeeded', succeeded),
    segment('failed', failed),
    segment('skipped', skipped),
  );
}

/** `45 s`, `3 min 05 s`, `2 h 04 min`, as the CLI says it. */
export function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

export function time(iso: string | null | undefined): HTMLElement | string {
  if (iso === null || iso === undefined) return '–';
  const date = new Date(iso);
  return h('time', { datetime: iso, title: iso }, date.toLocaleString());
}

/** Items per second since the task started, and the time left at that rate, while it runs. */
export function rateAndEta(
  ended: Counts,
  running: Counts,
  total: number,
  startTimeSeconds: number,
  now: number,
): string {
  const done = ended.attempted + ended.skipped + running.attempted + running.skipped;
  const elapsed = (now - startTimeSeconds * 1000) / 1000;
  if (done === 0 || elapsed <= 0) return 'starting';
  const rate = done / elapsed;
  const left = Math.max(total - done, 0);
  return `${rate.toFixed(rate < 10 ? 1 : 0)}/s, ${left === 0 ? 'finishing' : `${duration((left / rate) * 1000)} left`}`;
}

/** How long the task ran (ended) or has been running. */
export function elapsed(createdAt: string, endedAt: string | null | undefined, now: number): string {
  return duration((endedAt ? Date.parse(endedAt) : now) - Date.parse(createdAt));
}
