/**
 * `subtask-progress dashboard`: the dashboard on 127.0.0.1, with its API calls forwarded to the deployed API and
 * signed with the operator's credentials, as `kubectl proxy` does for a cluster. The signature is the operator's,
 * so the proxy lets through only what the page needs, from the page only:
 * - loopback only, and a `Host` of this very listener (a DNS-rebinding page gets nothing);
 * - a token made for this run, in the printed URL for the page and in `x-dashboard-token` for its calls (a
 *   custom header no other origin can send without a CORS preflight, which is never answered);
 * - the read routes and cancel (unless read-only), never initialize; no CORS headers at all.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { matchRoute, ROUTES } from '../../lambdas/core/routes';
import { type ApiOptions, send } from '../http';
import { LOOPBACK_HOST, listenOnLoopback } from '../loopback-server';
import { buildDashboard } from './site';

const HOST = LOOPBACK_HOST;
export const TOKEN_HEADER = 'x-dashboard-token';

export interface DashboardProxyOptions
  extends Pick<ApiOptions, 'apiUrl' | 'region' | 'credentials' | 'fetch'> {
  /** 0 picks a free port. */
  readonly port: number;
  /** Forward cancel too, and show its button. */
  readonly canCancel: boolean;
  /** @default a fresh random token */
  readonly token?: string;
}

export interface RunningDashboardProxy {
  /** What to open: the page, with the token. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Headers of the API's answer the page reads; everything else (API Gateway's own) stays behind. */
const FORWARDED_HEADERS = ['content-type', 'etag', 'cache-control', 'retry-after'] as const;

function refuse(response: ServerResponse, status: number, message: string, headers = {}): void {
  response.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(`${message}\n`);
}

function sameText(given: string | null | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startDashboardProxy(options: DashboardProxyOptions): Promise<RunningDashboardProxy> {
  const token = options.token ?? randomBytes(24).toString('base64url');
  const page = await buildDashboard({ canCancel: options.canCancel });
  const forwarded = new Set<string>([ROUTES.list, ROUTES.task, ROUTES.subtasks]);
  if (options.canCancel) forwarded.add(ROUTES.cancel);
  let hosts: readonly string[] = [];

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!hosts.includes(request.headers.host ?? '')) return refuse(response, 403, 'Unknown Host');
    const url = new URL(request.url ?? '/', `http://${request.headers.host}`);
    const method = request.method ?? 'GET';
    if (url.pathname === '/') {
      if (method !== 'GET') return refuse(response, 405, 'Method not allowed', { allow: 'GET' });
      if (!sameText(url.searchParams.get('token'), token))
        return refuse(response, 403, 'Open the URL with its token');
      response.writeHead(200, page.headers);
      response.end(page.html);
      return;
    }
    const header = request.headers[TOKEN_HEADER];
    if (!sameText(Array.isArray(header) ? undefined : header, token))
      return refuse(response, 403, 'Token required');
    const match = matchRoute(method, url.pathname);
    if (match === undefined || !forwarded.has(match.routeKey)) {
      const known =
        matchRoute(method, url.pathname) !== undefined || matchRoute('GET', url.pathname) !== undefined;
      return known ? refuse(response, 405, 'Not forwarded') : refuse(response, 404, 'No such route');
    }
    // The request's body is never read nor forwarded: no forwarded route takes one.
    request.resume();
    const ifNoneMatch = request.headers['if-none-match'];
    const answer = await send(
      {
        method: method === 'POST' ? 'POST' : 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        ...(typeof ifNoneMatch === 'string' ? { headers: { 'if-none-match': ifNoneMatch } } : {}),
      },
      options,
    );
    const headers: Record<string, string> = { 'x-content-type-options': 'nosniff' };
    for (const name of FORWARDED_HEADERS) {
      const value = answer.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    response.writeHead(answer.status, headers);
    response.end(answer.status === 304 ? undefined : answer.body);
  }

  const server: Server = createServer((request, response) => {
    serve(request, response).catch((error: unknown) => {
      console.error('subtask-progress dashboard:', error instanceof Error ? error.message : error);
      if (!response.headersSent) refuse(response, 502, 'The API could not be reached');
      else response.destroy();
    });
  });
  const port = await listenOnLoopback(server, options.port);
  hosts = [`${HOST}:${port}`, `localhost:${port}`];
  return {
    url: `http://${HOST}:${port}/?token=${token}`,
    port,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
