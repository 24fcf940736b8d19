/// <reference lib="dom" />
/**
 * The task list: state tabs, a group filter and a box to jump to a task, then one row per task, newest first,
 * with "More" on the cursor. Refreshing reloads the first page with its ETag; rows of later pages stay below.
 */
import type { TaskListPage, TaskRow } from '../../task-list-api';
import { type Answer, getJson } from './api';
import { fill, h } from './dom';
import { badge, elapsed, rateAndEta, stackedBar, time } from './widgets';

const TABS = [
  ['', 'All'],
  ['running', 'Running'],
  ['SUCCESS', 'Succeeded'],
  ['FAILURE', 'Failed'],
  ['CANCELED', 'Canceled'],
  ['ended', 'Ended'],
] as const;

export interface ListParams {
  readonly state: string;
  readonly group: string;
}

export function listHash({ state, group }: ListParams): string {
  const query = new URLSearchParams(Object.entries({ state, group }).filter(([, value]) => value !== ''));
  const search = query.toString();
  return search === '' ? '#/' : `#/?${search}`;
}

function row(task: TaskRow, now: number): HTMLTableRowElement {
  const items = task.task_progress;
  const done = task.subtasks.total - task.subtasks.remaining;
  return h(
    'tr',
    {},
    h('th', { scope: 'row' }, h('a', { href: `#/task/${encodeURIComponent(task.task_id)}` }, task.task_id)),
    h('td', { 'data-label': 'Group' }, task.group ?? '–'),
    h('td', { 'data-label': 'Action' }, task.action_name),
    h('td', { 'data-label': 'State' }, badge(task.task_state, task.cancel_requested)),
    h('td', { 'data-label': 'Items', class: 'wide' }, stackedBar(items, task.in_flight, items.total)),
    h('td', { 'data-label': 'Subtasks' }, `${done}/${task.subtasks.total}`),
    h(
      'td',
      { 'data-label': 'Rate' },
      task.task_state === 'PROGRESS'
        ? rateAndEta(items, task.in_flight, items.total, items.start_time, now)
        : '–',
    ),
    h('td', { 'data-label': 'Started' }, time(task.created_at)),
    h('td', { 'data-label': 'Duration' }, elapsed(task.created_at, task.ended_at, now)),
  );
}

/** Renders the list into `view` and returns the load its refresher runs. */
export function listView(
  view: HTMLElement,
  params: ListParams,
  navigate: (hash: string) => void,
): (signal: AbortSignal) => Promise<void> {
  const body = h('tbody');
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'More');
  const empty = h('p', { class: 'empty', hidden: true }, 'No tasks here.');
  let first: readonly TaskRow[] = [];
  let later: TaskRow[] = [];
  let etag: string | undefined;
  let cursor: string | null = null;

  const render = () => {
    const now = Date.now();
    const shown = new Set(first.map((task) => task.task_id));
    const rows = [...first, ...later.filter((task) => !shown.has(task.task_id))];
    fill(body, ...rows.map((task) => row(task, now)));
    empty.hidden = rows.length > 0;
    more.hidden = cursor === null;
  };

  const query = (extra: Record<string, string | undefined> = {}) => ({
    state: params.state,
    group: params.group,
    ...extra,
  });

  more.addEventListener('click', async () => {
    if (cursor === null) return;
    more.disabled = true;
    try {
      const answer = await getJson<TaskListPage>('/tasks', query({ cursor }));
      if (answer.status === 200) {
        later = [...later, ...answer.body.tasks];
        cursor = answer.body.next_cursor;
      }
    } finally {
      more.disabled = false;
      render();
    }
  });

  const tabs = h(
    'div',
    { role: 'tablist', 'aria-label': 'Tasks by state', class: 'tabs' },
    ...TABS.map(([state, label]) =>
      h(
        'button',
        {
          type: 'button',
          role: 'tab',
          'aria-selected': String(state === params.state),
          'aria-controls': 'task-table',
          onclick: () => navigate(listHash({ ...params, state })),
        },
        label,
      ),
    ),
  );
  const groupInput = h('input', {
    id: 'group',
    name: 'group',
    value: params.group,
    placeholder: 'course-v1:…',
  });
  const groupForm = h(
    'form',
    {
      class: 'inline',
      role: 'search',
      onsubmit: (event: Event) => {
        event.preventDefault();
        navigate(listHash({ ...params, group: groupInput.value.trim() }));
      },
    },
    h('label', { for: 'group' }, 'Group'),
    groupInput,
    h('button', { type: 'submit' }, 'Filter'),
  );
  const jumpInput = h('input', { id: 'jump', name: 'task', required: true, placeholder: 'task id' });
  const jumpForm = h(
    'form',
    {
      class: 'inline',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const id = jumpInput.value.trim();
        if (id !== '') navigate(`#/task/${encodeURIComponent(id)}`);
      },
    },
    h('label', { for: 'jump' }, 'Go to task'),
    jumpInput,
    h('button', { type: 'submit' }, 'Open'),
  );
  const table = h(
    'table',
    { id: 'task-table' },
    h(
      'caption',
      {},
      params.group === '' ? 'Tasks, newest first' : `Tasks of group ${params.group}, newest first`,
    ),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Task', 'Group', 'Action', 'State', 'Items', 'Subtasks', 'Rate', 'Started', 'Duration'].map(
          (name) => h('th', { scope: 'col' }, name),
        ),
      ),
    ),
    body,
  );
  fill(
    view,
    h('h1', {}, 'Tasks'),
    h('div', { class: 'filters' }, tabs, groupForm, jumpForm),
    table,
    empty,
    more,
  );

  return async (signal) => {
    const answer: Answer<TaskListPage> = await getJson<TaskListPage>('/tasks', query(), etag, signal);
    if (answer.status === 200) {
      first = answer.body.tasks;
      etag = answer.etag;
      if (later.length === 0) cursor = answer.body.next_cursor;
    }
    render();
  };
}
