import { setTimeout as delay } from 'node:timers/promises';
import { Presets, SingleBar } from 'cli-progress';
import { ProgressApiUnreachableError } from '../errors';
import { getProgress, type Progress } from '../progress-api';
import { formatDuration } from './format';

/**
 * `watch`: a live bar of finished subtasks, polling with `If-None-Match` so that an unchanged task costs a 304 and
 * no redraw. Ends when the task does, or on Ctrl-C.
 */

/** A blip (the local stack restarting, a dropped connection) is ridden out; a dead API is reported. */
const MAX_CONSECUTIVE_UNREACHABLE = 5;

interface Rate {
  readonly perSecond: number;
  readonly etaMs: number | undefined;
}

function finishedSubtasks(progress: Progress): number {
  return progress.subtasks.succeeded + progress.subtasks.failed;
}

/** Rate since the watch began, not since the task did: the task may have been paused or slow before. */
function rateSince(start: { at: number; finished: number }, progress: Progress, now: number): Rate {
  const elapsedSeconds = (now - start.at) / 1000;
  const done = finishedSubtasks(progress) - start.finished;
  const perSecond = elapsedSeconds > 0 ? done / elapsedSeconds : 0;
  const etaMs = perSecond > 0 ? (progress.subtasks.remaining / perSecond) * 1000 : undefined;
  return { perSecond, etaMs };
}

function payload(progress: Progress, rate: Rate) {
  return {
    succeeded: progress.task_progress.succeeded,
    failed: progress.task_progress.failed,
    skipped: progress.task_progress.skipped,
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
  const start = { at: Date.now(), finished: finishedSubtasks(progress) };
  const bar = new SingleBar(
    {
      format:
        '{bar} {value}/{total} subtasks | items: {succeeded} ok, {failed} failed, {skipped} skipped | ' +
        '{rate}/s, ETA {time_left}',
      barsize: 20,
      hideCursor: true,
      stream: options.stream ?? process.stderr,
      // Redirected to a file, print a plain line now and then instead of redrawing.
      noTTYOutput: true,
      notTTYSchedule: 2_000,
    },
    Presets.shades_classic,
  );
  bar.start(progress.subtasks.total, start.finished, payload(progress, { perSecond: 0, etaMs: undefined }));
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
      bar.setTotal(progress.subtasks.total);
      bar.update(finishedSubtasks(progress), payload(progress, rateSince(start, progress, Date.now())));
    }
  } finally {
    bar.stop();
    process.off('SIGINT', onInterrupt);
  }
  return interrupted.signal.aborted ? undefined : progress;
}
