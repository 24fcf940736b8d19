/**
 * `watch`: a live bar of items attempted — those of ended subtasks and the latest counts of running ones
 * (`in_flight`), so it moves while subtasks run, not only when they end — polling with `If-None-Match` so that an
 * unchanged task costs a 304 and no redraw. Ends when the task does (`SUCCESS`, `FAILURE` or `CANCELED`), or on
 * Ctrl-C.
 */

import { setTimeout as delay } from 'node:timers/promises';
import { Presets, SingleBar } from 'cli-progress';
import { ProgressApiUnreachableError } from '../errors';
import { getProgress, type Progress } from '../progress-api';
import { formatDuration } from './format';

/** A blip (the local stack restarting, a dropped connection) is ridden out; a dead API is reported. */
const MAX_CONSECUTIVE_UNREACHABLE = 5;

interface Rate {
  readonly perSecond: number;
  readonly etaMs: number | undefined;
}

/** Items attempted so far, running subtasks' included: what the bar shows. */
function itemsAttempted(progress: Progress): number {
  return progress.task_progress.attempted + progress.in_flight.attempted;
}

/** The bar's length: the job's items, or what was attempted when the job said fewer (or none). */
function barTotal(progress: Progress): number {
  return Math.max(progress.task_progress.total, itemsAttempted(progress), 1);
}

/** Rate since the watch began, not since the task did: the task may have been paused or slow before. */
function rateSince(start: { at: number; attempted: number }, progress: Progress, now: number): Rate {
  const elapsedSeconds = (now - start.at) / 1000;
  const done = itemsAttempted(progress) - start.attempted;
  const perSecond = elapsedSeconds > 0 ? done / elapsedSeconds : 0;
  const left = barTotal(progress) - itemsAttempted(progress);
  const etaMs = perSecond > 0 ? (left / perSecond) * 1000 : undefined;
  return { perSecond, etaMs };
}

function payload(progress: Progress, rate: Rate) {
  const { task_progress: ended, in_flight: running, subtasks } = progress;
  return {
    succeeded: ended.succeeded + running.succeeded,
    failed: ended.failed + running.failed,
    skipped: ended.skipped + running.skipped,
    subtasks_done: subtasks.succeeded + subtasks.failed,
    subtasks_total: subtasks.total,
    state: progress.cancel_requested ? 'canceling' : progress.task_state.toLowerCase(),
    rate: rate.perSecond.toFixed(1),
    // Not `eta`: cli-progress fills that token itself, from its own (shorter-sighted) estimate.
    time_left: rate.etaMs === undefined ? '--' : formatDuration(rate.etaMs),
  };
}

/** Waits `ms`, or less when `signal` aborts first. */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch((error: unknown) => {
    if (!signal.aborted) throw error;
  });
}

export interface WatchOptions {
  readonly intervalMs: number;
  readonly apiUrl?: string;
  /** Where the bar is drawn. @default process.stderr */
  readonly stream?: NodeJS.WriteStream;
}

/** Follows `taskId` until it ends; returns its last progress, or undefined when interrupted. */
export async function watchTask(taskId: string, options: WatchOptions): Promise<Progress | undefined> {
  const apiOptions = options.apiUrl === undefined ? {} : { apiUrl: options.apiUrl };
  const first = await getProgress(taskId, apiOptions);
  if (first.status !== 200) throw new Error('The progress API answered 304 to an unconditional request');
  let progress = first.progress;
  let etag = first.etag;
  if (!progress.in_progress) return progress;

  const interrupted = new AbortController();
  const onInterrupt = () => interrupted.abort();
  process.once('SIGINT', onInterrupt);
  const start = { at: Date.now(), attempted: itemsAttempted(progress) };
  const bar = new SingleBar(
    {
      format:
        '{bar} {value}/{total} items | {succeeded} ok, {failed} failed, {skipped} skipped | ' +
        'subtasks {subtasks_done}/{subtasks_total} | {state} | {rate}/s, ETA {time_left}',
      barsize: 20,
      hideCursor: true,
      stream: options.stream ?? process.stderr,
      // Redirected to a file, print a plain line now and then instead of redrawing.
      noTTYOutput: true,
      notTTYSchedule: 2_000,
    },
    Presets.shades_classic,
  );
  bar.start(barTotal(progress), start.attempted, payload(progress, { perSecond: 0, etaMs: undefined }));
  let unreachable = 0;
  try {
    while (progress.in_progress && !interrupted.signal.aborted) {
      await pause(options.intervalMs, interrupted.signal);
      if (interrupted.signal.aborted) break;
      let result: Awaited<ReturnType<typeof getProgress>>;
      try {
        result = await getProgress(taskId, { ...apiOptions, ...(etag === undefined ? {} : { etag }) });
        unreachable = 0;
      } catch (error) {
        if (!(error instanceof ProgressApiUnreachableError) || ++unreachable >= MAX_CONSECUTIVE_UNREACHABLE)
          throw error;
        continue;
      }
      if (result.status === 304) continue;
      progress = result.progress;
      etag = result.etag;
      bar.setTotal(barTotal(progress));
      bar.update(itemsAttempted(progress), payload(progress, rateSince(start, progress, Date.now())));
    }
  } finally {
    bar.stop();
    process.off('SIGINT', onInterrupt);
  }
  return interrupted.signal.aborted ? undefined : progress;
}
