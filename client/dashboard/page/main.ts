/// <reference lib="dom" />
/**
 * The dashboard's entry: a hash router (`#/?state=&group=` for the list, `#/task/<id>` for one task), one view
 * at a time, each kept fresh by its own refresher, stopped when the reader leaves it.
 */
import { listView } from './list-view';
import { type Refresher, startRefresh } from './refresh';
import { taskView } from './task-view';

const REFRESH_MS = 2_000;

const view = document.getElementById('view') as HTMLElement;
const freshness = document.getElementById('freshness') as HTMLElement;
const canCancel = document.body.dataset.canCancel === 'true';
let refresher: Refresher | undefined;

function navigate(hash: string): void {
  if (location.hash === hash) refresher?.now();
  else location.hash = hash;
}

function show(): void {
  refresher?.stop();
  const hash = location.hash.replace(/^#/, '') || '/';
  const task = /^\/task\/(.+)$/.exec(hash);
  let load: (signal: AbortSignal) => Promise<void>;
  if (task?.[1] !== undefined) {
    const taskId = decodeURIComponent(task[1]);
    document.title = `Task ${taskId} · Subtask progress`;
    load = taskView(view, taskId, { canCancel, refreshNow: () => refresher?.now() });
  } else {
    const params = new URLSearchParams(hash.split('?')[1] ?? '');
    document.title = 'Tasks · Subtask progress';
    load = listView(view, { state: params.get('state') ?? '', group: params.get('group') ?? '' }, navigate);
  }
  view.focus();
  refresher = startRefresh(load, { intervalMs: REFRESH_MS, freshness });
}

window.addEventListener('hashchange', show);
show();
