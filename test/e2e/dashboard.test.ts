/**
 * The dashboard in headless Chromium (Debian's, through playwright-core: no browser download) against the local
 * stack: the list, a task page that follows statuses as they arrive, its subtask filter and paging, cancel behind
 * its confirmation; and the `dashboard` command's proxy, which refuses whatever is not the page's own call. The
 * run saves a screenshot of each view into docs/, where the README shows them.
 */

import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningDashboardProxy, startDashboardProxy, TOKEN_HEADER } from '../../client/dashboard/proxy';
import { uniqueName } from '../support/aws';
import {
  http,
  initialize,
  isRecord,
  progressOf,
  sendBodies,
  settled,
  startTestStack,
  type TestStack,
  wireMessage,
} from './stack';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));
const subtasks = (count: number) =>
  Array.from({ length: count }, (_, index) => `s-${String(index).padStart(2, '0')}`);

let stack: TestStack;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  stack = await startTestStack();
  // Root in CI: Chromium's sandbox needs user namespaces the container may not have.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** `wireMessage`'s entry id names the parent task: statuses of `taskId` go to its subtasks. */
async function reportTo(taskId: string, ids: readonly string[], state?: string, succeeded?: number) {
  await sendBodies(
    stack.queueUrl,
    ids.map((id) =>
      wireMessage(taskId, id, { succeeded: succeeded ?? 100, failed: 0, state: state ?? 'SUCCESS' }),
    ),
  );
}

describe('the dashboard on the local stack', () => {
  const group = 'course-v1:Demo';
  const finished = uniqueName('dash-done');
  const live = uniqueName('dash-live');

  it('lists a running task first, newest first, with its group, state and bar', async () => {
    await initialize(stack, finished, ['only']);
    await reportTo(finished, ['only']);
    await settled(stack);
    await initialize(stack, live, subtasks(25), { group });

    await page.goto(`${stack.httpUrl}/`);
    const rows = page.locator('#task-table tbody tr');
    await expect.poll(() => rows.count()).toBeGreaterThanOrEqual(2);
    await expect.poll(() => rows.nth(0).locator('th').textContent()).toBe(live);
    expect(await rows.nth(0).textContent()).toContain(group);
    expect(await rows.nth(0).locator('.badge').textContent()).toBe('PROGRESS');
    expect(await rows.nth(1).locator('th').textContent()).toBe(finished);
    expect(await rows.nth(1).locator('.badge').textContent()).toBe('SUCCESS');
    await expect.poll(() => page.locator('#freshness').textContent()).toMatch(/updated \d+ s ago/);
    await page.screenshot({ path: `${DOCS}dashboard-list.png` });

    await page.setViewportSize({ width: 400, height: 800 });
    await page.screenshot({ path: `${DOCS}dashboard-narrow.png` });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(400);
    await page.setViewportSize({ width: 1200, height: 800 });

    await page.getByRole('tab', { name: 'Running' }).click();
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringContaining(live)]);
    await page.getByLabel('Group').fill('course-v1:Other');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => page.locator('.empty').first().isVisible()).toBe(true);
  });

  it('follows a task as statuses arrive, without a reload, and ends with the API message', async () => {
    await page.getByLabel('Go to task').fill(live);
    await page.getByRole('button', { name: 'Open' }).click();
    const message = page.locator('.message');
    await expect.poll(() => message.textContent()).toContain('Progress: emailed 0 of 0 so far');

    await reportTo(live, subtasks(25).slice(0, 10));
    await reportTo(live, subtasks(25).slice(10, 12), 'PROGRESS', 40);
    await expect
      .poll(() => message.textContent(), { timeout: 20_000 })
      .toContain('emailed 1000 of 1000 so far');
    await expect
      .poll(() => page.locator('.counts').textContent())
      .toContain('80 attempted by running subtasks');
    await page.screenshot({ path: `${DOCS}dashboard-task.png`, fullPage: true });

    await reportTo(live, subtasks(25).slice(10));
    await expect
      .poll(() => page.locator('#task-heading .badge').textContent(), { timeout: 20_000 })
      .toBe('SUCCESS');
    expect(await message.textContent()).toBe((await progressOf(stack, live)).message);
  });

  it('filters the subtasks by state and pages on with More', async () => {
    const rows = page.locator('section[aria-labelledby=subtasks-heading] tbody tr');
    await expect.poll(() => rows.count()).toBe(20);
    await page.getByRole('button', { name: 'More subtasks' }).click();
    await expect.poll(() => rows.count()).toBe(25);
    expect(await page.getByRole('button', { name: 'More subtasks' }).isHidden()).toBe(true);

    await page.getByLabel('State').selectOption('FAILURE');
    await expect.poll(() => page.getByText('No subtasks match.').isVisible()).toBe(true);
    await page.getByLabel('State').selectOption('SUCCESS');
    await expect.poll(() => rows.count()).toBe(20);
  });

  it('asks before it cancels, and the task ends CANCELED', async () => {
    const doomed = uniqueName('dash-cancel');
    await initialize(stack, doomed, subtasks(3));
    await page.goto(`${stack.httpUrl}/#/task/${doomed}`);
    await page.getByRole('button', { name: 'Cancel…' }).click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Keep running' }).click();
    expect((await progressOf(stack, doomed)).cancel_requested).toBe(false);

    await page.getByRole('button', { name: 'Cancel…' }).click();
    await page.screenshot({ path: `${DOCS}dashboard-cancel.png` });
    await dialog.getByRole('button', { name: 'Cancel task' }).click();
    await expect.poll(async () => (await progressOf(stack, doomed)).cancel_requested).toBe(true);
    await stack.sweepNow();
    await settled(stack);
    await expect
      .poll(() => page.locator('#task-heading .badge').textContent(), { timeout: 20_000 })
      .toBe('CANCELED');
    expect(await page.locator('.message').textContent()).toBe((await progressOf(stack, doomed)).message);
    expect(await page.getByRole('button', { name: 'Cancel…' }).count()).toBe(0);
  });
});

describe('the dashboard refresh', () => {
  /** Requests of the page to the API: how many, how many at once at most, and which were conditional. */
  function watchRequests(view: Page) {
    const seen = { total: 0, conditional: 0, notModified: 0, inFlight: 0, maxInFlight: 0 };
    const isApi = (url: string) => new URL(url).pathname.startsWith('/tasks');
    view.on('request', (request) => {
      if (!isApi(request.url())) return;
      seen.total += 1;
      seen.inFlight += 1;
      seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
      if (request.headers()['if-none-match'] !== undefined) seen.conditional += 1;
    });
    const settle = (request: { url(): string }) => {
      if (isApi(request.url())) seen.inFlight -= 1;
    };
    view.on('requestfinished', settle);
    view.on('requestfailed', settle);
    view.on('response', (response) => {
      if (isApi(response.url()) && response.status() === 304) seen.notModified += 1;
    });
    return seen;
  }

  const setHidden = (view: Page, hidden: boolean) =>
    view.evaluate((value) => {
      Object.defineProperty(document, 'hidden', { value, configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);

  it('polls one request at a time with If-None-Match, pauses while hidden, and says when it is offline', async () => {
    const view = await browser.newPage();
    const seen = watchRequests(view);
    await view.goto(`${stack.httpUrl}/`);
    await expect.poll(() => seen.notModified, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    expect(seen.conditional).toBeGreaterThanOrEqual(2);
    expect(seen.maxInFlight).toBe(1);

    await setHidden(view, true);
    await expect.poll(() => view.locator('#freshness').textContent()).toBe('paused while hidden');
    const whileHidden = seen.total;
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    expect(seen.total).toBe(whileHidden);

    await view.route('**/tasks?**', (route) => route.abort());
    await view.route('**/tasks', (route) => route.abort());
    await setHidden(view, false);
    await expect.poll(() => view.locator('#freshness').textContent()).toMatch(/^offline/);
    await view.unrouteAll();
    await expect
      .poll(() => view.locator('#freshness').textContent(), { timeout: 15_000 })
      .toMatch(/^updated/);
    expect(seen.maxInFlight).toBe(1);
    await view.close();
  });
});

/** A request with the headers exactly as given (fetch will not send another `Host`). */
function raw(
  url: string,
  method: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method, headers }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers }));
    });
    request.on('error', reject);
    request.end();
  });
}

describe('the dashboard command', () => {
  let proxy: RunningDashboardProxy;
  const token = 'per-run-token';

  beforeAll(async () => {
    proxy = await startDashboardProxy({ apiUrl: stack.httpUrl, port: 0, canCancel: true, token });
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  const base = () => `http://127.0.0.1:${proxy.port}`;

  it('serves the page with the token, whose calls it forwards', async () => {
    const view = await browser.newPage();
    await view.goto(proxy.url);
    await expect.poll(() => view.locator('#task-table tbody tr').count()).toBeGreaterThan(0);
    await view.close();
    const listed = await http(`${base()}/tasks?limit=1`, { headers: { [TOKEN_HEADER]: token } });
    expect(listed.status).toBe(200);
    expect(isRecord(listed.json) && Array.isArray(listed.json.tasks)).toBe(true);
  });

  it('refuses the page and the API without the token, or with another', async () => {
    expect((await http(`${base()}/`)).status).toBe(403);
    expect((await http(`${base()}/?token=wrong`)).status).toBe(403);
    expect((await http(`${base()}/tasks`)).status).toBe(403);
    expect((await http(`${base()}/tasks`, { headers: { [TOKEN_HEADER]: 'wrong' } })).status).toBe(403);
  });

  it('refuses another Host (a DNS-rebinding page)', async () => {
    const answer = await raw(`${base()}/tasks`, 'GET', {
      host: `evil.example:${proxy.port}`,
      [TOKEN_HEADER]: token,
    });
    expect(answer.status).toBe(403);
  });

  it('never forwards initialize, and answers no CORS preflight', async () => {
    const taskId = uniqueName('via-proxy');
    const putAnswer = await raw(`${base()}/tasks/${taskId}`, 'PUT', { [TOKEN_HEADER]: token });
    const preflight = await raw(`${base()}/tasks`, 'OPTIONS', {
      origin: 'https://evil.example',
      'access-control-request-method': 'GET',
      'access-control-request-headers': TOKEN_HEADER,
    });

    expect(putAnswer.status).toBe(405);
    expect((await http(`${stack.httpUrl}/tasks/${taskId}`)).status).toBe(404);
    expect(preflight.status).toBeGreaterThanOrEqual(400);
    expect(Object.keys(preflight.headers).filter((name) => name.startsWith('access-control-'))).toEqual([]);
  });
});
