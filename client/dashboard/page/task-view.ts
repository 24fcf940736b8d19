/// <reference lib="dom" />
/**
 * One task: the API's progress sentence, the stacked bar, counts (live ones of running subtasks included), the
 * end reason, Cancel behind a confirmation, and its subtasks filtered by state with "More" on the cursor. The
 * subtasks' first page reloads only when the task's ETag moved, after the task itself: one request at a time.
 */
import { SUBTASK_STATES } from '../../../lambdas/core/subtask-status';
import type { Progress, SubtaskListing, SubtaskPage } from '../../progress-api';
import { ApiError, getJson, post, taskPath } from './api';
import { fill, h } from './dom';
import { badge, duration, rateAndEta, stackedBar, time } from './widgets';

export interface TaskViewOptions {
  readonly canCancel: boolean;
  /** Load again now, after the request in flight (a cancel changed the task). */
  readonly refreshNow: () => void;
}

function subtaskRow(subtask: SubtaskListing): HTMLTableRowElement {
  return h(
    'tr',
    {},
    h('th', { scope: 'row' }, subtask.subtask_id),
    h('td', { 'data-label': 'State' }, badge(subtask.state)),
    h('td', { 'data-label': 'Attempted' }, subtask.attempted),
    h('td', { 'data-label': 'Succeeded' }, subtask.succeeded),
    h('td', { 'data-label': 'Failed' }, subtask.failed),
    h('td', { 'data-label': 'Skipped' }, subtask.skipped),
    h('td', { 'data-label': 'Retries' }, subtask.retried_nomax + subtask.retried_withmax),
    h('td', { 'data-label': 'Reason' }, subtask.reason ?? '–'),
    h('td', { 'data-label': 'Updated' }, time(subtask.updated_at)),
  );
}

function counts(progress: Progress, now: number): HTMLElement {
  const items = progress.task_progress;
  const flight = progress.in_flight;
  const subtasks = progress.subtasks;
  const entry = (term: string, ...value: (Node | string)[]) => [h('dt', {}, term), h('dd', {}, ...value)];
  return h(
    'dl',
    { class: 'counts' },
    ...entry(
      'Items',
      `${items.attempted} attempted: ${items.succeeded} succeeded, ${items.failed} failed; ` +
        `${items.skipped} skipped; ${items.total} in all`,
    ),
    ...(progress.in_progress
      ? entry(
          'In flight',
          `${flight.attempted} attempted by running subtasks: ${flight.succeeded} succeeded, ` +
            `${flight.failed} failed; ${flight.skipped} skipped`,
        )
      : []),
    ...entry(
      'Subtasks',
      `${subtasks.total}: ${subtasks.succeeded} succeeded, ${subtasks.failed} failed, ${subtasks.remaining} remaining`,
    ),
    ...(progress.in_progress
      ? entry('Rate', rateAndEta(items, flight, items.total, items.start_time, now))
      : entry('Ran', duration(items.duration_ms))),
    ...entry('Started', time(new Date(items.start_time * 1000).toISOString())),
    ...entry('Updated', time(progress.updated_at)),
    ...(progress.ended_at === undefined ? [] : entry('Ended', time(progress.ended_at))),
    ...(progress.end_reason === undefined ? [] : entry('End reason', progress.end_reason)),
  );
}

export function taskView(
  view: HTMLElement,
  taskId: string,
  { canCancel, refreshNow }: TaskViewOptions,
): (signal: AbortSignal) => Promise<void> {
  const summary = h('section', { 'aria-labelledby': 'task-heading' });
  const notice = h('p', { class: 'notice', role: 'alert', hidden: true });
  const stateSelect = h(
    'select',
    { id: 'subtask-state' },
    h('option', { value: '' }, 'All states'),
    ...SUBTASK_STATES.map((state) => h('option', { value: state }, state)),
  );
  const subtaskBody = h('tbody');
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'More subtasks');
  const subtaskNote = h('p', { class: 'empty', hidden: true });
  let etag: string | undefined;
  let progress: Progress | undefined;
  let subtasks: SubtaskListing[] = [];
  let cursor: string | null = null;
  let pagedOn = false;
  /** The filter changed: the next load reads the first page whatever the task's ETag says. */
  let subtasksStale = true;

  const renderSubtasks = () => {
    fill(subtaskBody, ...subtasks.map(subtaskRow));
    more.hidden = cursor === null;
    subtaskNote.hidden = subtasks.length > 0;
    subtaskNote.textContent =
      cursor === null ? 'No subtasks match.' : 'None in the part read so far; "More subtasks" reads on.';
  };

  const readSubtasks = async (after: string | null, signal?: AbortSignal) => {
    const answer = await getJson<SubtaskPage>(
      taskPath(taskId, '/subtasks'),
      { state: stateSelect.value, cursor: after ?? undefined, limit: '20' },
      undefined,
      signal,
    );
    return answer.status === 200 ? answer.body : { subtasks: [], next_cursor: null };
  };

  const dialog = h(
    'dialog',
    { 'aria-labelledby': 'confirm-heading' },
    h('h2', { id: 'confirm-heading' }, `Cancel task ${taskId}?`),
    h(
      'p',
      {},
      'Every subtask not yet ended becomes REVOKED and the task ends CANCELED. This cannot be undone.',
    ),
    h(
      'form',
      { method: 'dialog' },
      h('button', { value: 'keep', autofocus: true }, 'Keep running'),
      h('button', { value: 'cancel', class: 'danger' }, 'Cancel task'),
    ),
  );
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'cancel') return;
    try {
      await post(taskPath(taskId, '/cancel'));
      notice.textContent = 'Cancel requested: running subtasks are being revoked.';
    } catch (error) {
      notice.textContent = `Cancel failed: ${error instanceof Error ? error.message : String(error)}`;
    }
    notice.hidden = false;
    refreshNow();
  });

  const renderSummary = () => {
    if (progress === undefined) return;
    const now = Date.now();
    const cancellable = canCancel && progress.in_progress && !progress.cancel_requested;
    fill(
      summary,
      h(
        'h1',
        { id: 'task-heading' },
        `Task ${progress.task_id} `,
        badge(progress.task_state, progress.cancel_requested),
      ),
      h('p', { class: 'message', 'aria-live': 'polite' }, progress.message),
      stackedBar(progress.task_progress, progress.in_flight, progress.task_progress.total),
      counts(progress, now),
      cancellable
        ? h('button', { type: 'button', class: 'danger', onclick: () => dialog.showModal() }, 'Cancel…')
        : null,
    );
  };

  stateSelect.addEventListener('change', async () => {
    subtasksStale = true;
    refreshNow();
  });
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const page = await readSubtasks(cursor);
      subtasks = [...subtasks, ...page.subtasks];
      cursor = page.next_cursor;
      pagedOn = true;
    } finally {
      more.disabled = false;
      renderSubtasks();
    }
  });

  fill(
    view,
    h('p', {}, h('a', { href: '#/' }, '← All tasks')),
    notice,
    summary,
    h(
      'section',
      { 'aria-labelledby': 'subtasks-heading' },
      h('h2', { id: 'subtasks-heading' }, 'Subtasks'),
      h('div', { class: 'filters' }, h('label', { for: 'subtask-state' }, 'State'), stateSelect),
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...[
              'Subtask',
              'State',
              'Attempted',
              'Succeeded',
              'Failed',
              'Skipped',
              'Retries',
              'Reason',
              'Updated',
            ].map((name) => h('th', { scope: 'col' }, name)),
          ),
        ),
        subtaskBody,
      ),
      subtaskNote,
      more,
    ),
    dialog,
  );

  return async (signal) => {
    let changed = false;
    try {
      const answer = await getJson<Progress>(taskPath(taskId), {}, etag, signal);
      if (answer.status === 200) {
        progress = answer.body;
        etag = answer.etag;
        changed = true;
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        fill(summary, h('h1', { id: 'task-heading' }, `No task ${taskId}`));
        return;
      }
      throw error;
    }
    renderSummary();
    // A reader who paged on keeps the pages read; otherwise the first page follows the task.
    if (subtasksStale || (changed && !pagedOn)) {
      const page = await readSubtasks(null, signal);
      subtasks = page.subtasks;
      cursor = page.next_cursor;
      pagedOn = false;
      subtasksStale = false;
      renderSubtasks();
    }
  };
}
