/**
 * Stands in for API Gateway's HTTP API in front of the API function: each request becomes a payload format 2.0
 * event (body included, base64-encoded when it is not text), routed with the same route table the CDK stack
 * declares, and the function's structured result becomes the response. The function gets a Lambda context whose
 * remaining time counts down from API Gateway's 30 s. Authorization is not emulated: the local API listens on
 * 127.0.0.1 only.
 */

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { z } from 'zod';
import { LOOPBACK_HOST, listenOnLoopback } from '../client/loopback-server';
import { matchRoute, ROUTES } from '../lambdas/core/routes';
import { API, serviceName } from '../lambdas/service-settings';
import { LOCAL_REGION } from './emulators';
import { ACCOUNT_ID, DeadlineInvocations } from './lambda-invocation';

/** Its result is checked like any untrusted input, so it is typed as what it may be: anything. */
export type ApiHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<unknown>;

export interface HttpGatewayOptions {
  readonly handler: ApiHandler;
  /** 0 picks a free port. */
  readonly port: number;
  /**
   * How long a request may take: the function's context counts down from it, and past it the client gets a 503
   * while the function runs on. @default API_GATEWAY_TIMEOUT_MS (30 s, API Gateway's integration timeout)
   */
  readonly timeoutMs?: number;
  /** @default 'subtask-progress-api' */
  readonly functionName?: string;
  /** Called with whatever the handler threw or returned malformed; the client only sees a plain 500. */
  readonly onError?: (error: unknown) => void;
  /** Documents served as they are to a GET of their path (the dashboard at `/`), beside the API's routes. */
  readonly staticPages?: Readonly<Record<string, StaticPage>>;
}

export interface StaticPage {
  readonly html: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface RunningHttpGateway {
  /** Base URL, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  readonly port: number;
  /** Waits for requests in flight, then closes every connection. Idempotent. */
  stop(): Promise<void>;
}

const HOST = LOOPBACK_HOST;
/** API Gateway's HTTP API refuses request bodies over 10 MB with a 413, before any function runs. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;
/**
 * Lambda takes at most this much as a synchronous invocation's payload, the whole event JSON: a body under API
 * Gateway's limit can still make an event over this one (base64 adds a third), and the request fails with a 413.
 */
export const MAX_EVENT_BYTES = 6 * 1024 * 1024 + 100;
/** API Gateway gives an integration at most 30 s, then answers 503 itself. */
export const API_GATEWAY_TIMEOUT_MS = 30_000;
const STAGE = '$default';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The routes' distinct methods, so a path can be told apart from a method it does not take. */
const ROUTE_METHODS = [...new Set(Object.values(ROUTES).map((routeKey) => routeKey.split(' ')[0] ?? ''))];

/** A function result is untrusted input to the gateway: API Gateway answers 500 to a malformed one, and so do we. */
const resultSchema = z.object({
  statusCode: z.int().min(100).max(599),
  headers: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  cookies: z.array(z.string()).optional(),
  body: z.string().optional(),
  isBase64Encoded: z.boolean().optional(),
});

type GatewayResult = z.infer<typeof resultSchema>;

function jsonResult(statusCode: number, error: string, message: string, headers = {}): GatewayResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify({ error, message }),
  };
}

/** Same length and alphabet as API Gateway's request ids (`JKJaXmPLvHcESHA=`). */
function newRequestId(): string {
  return randomBytes(11).toString('base64');
}

/** `12/Mar/2020:19:03:58 +0000`, the form of `requestContext.time`. */
function requestTime(date: Date): string {
  const two = (value: number) => String(value).padStart(2, '0');
  return (
    `${two(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
  );
}

/** API Gateway joins repeated query keys with commas; values arrive URL-decoded. */
function queryParameters(rawQueryString: string): Record<string, string> | undefined {
  if (rawQueryString.length === 0) return undefined;
  const joined = new Map<string, string[]>();
  for (const [key, value] of new URLSearchParams(rawQueryString)) {
    joined.set(key, [...(joined.get(key) ?? []), value]);
  }
  return Object.fromEntries([...joined].map(([key, values]) => [key, values.join(',')]));
}

/** Lowercased names, repeated headers joined with commas; cookies go to their own list, as in payload 2.0. */
function headersOf(request: IncomingMessage): { headers: Record<string, string>; cookies?: string[] } {
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [name, values] of Object.entries(request.headersDistinct)) {
    if (values === undefined) continue;
    if (name === 'cookie') {
      cookies = values.flatMap((value) => value.split(';').map((cookie) => cookie.trim()));
    } else {
      headers[name] = values.join(',');
    }
  }
  return cookies === undefined ? { headers } : { headers, cookies };
}

export interface RequestLine {
  readonly method: string;
  readonly rawPath: string;
  readonly rawQueryString: string;
}

function requestLine(request: IncomingMessage): RequestLine {
  const target = request.url ?? '/';
  const queryStart = target.indexOf('?');
  return {
    method: request.method ?? 'GET',
    rawPath: queryStart === -1 ? target : target.slice(0, queryStart),
    rawQueryString: queryStart === -1 ? '' : target.slice(queryStart + 1),
  };
}

/** Media types API Gateway hands over as text; any other body (or an encoded one) arrives base64-encoded. */
const TEXT_MEDIA_TYPE =
  /^(text\/[^;]+|application\/(json|[^;]*\+json|xml|[^;]*\+xml|javascript|x-www-form-urlencoded|graphql))\s*(;|$)/i;

/** The event's `body` and `isBase64Encoded`: text as it came, anything else base64; no body at all when empty. */
export function eventBody(
  body: Buffer,
  headers: Readonly<Record<string, string>>,
): { body?: string; isBase64Encoded: boolean } {
  if (body.length === 0) return { isBase64Encoded: false };
  const type = headers['content-type'] ?? '';
  const encoded = (headers['content-encoding'] ?? 'identity').toLowerCase() !== 'identity';
  const text = body.toString('utf8');
  // A text type whose bytes are not UTF-8 would be mangled by a string: base64 keeps every byte.
  if (TEXT_MEDIA_TYPE.test(type) && !encoded && Buffer.from(text, 'utf8').equals(body)) {
    return { body: text, isBase64Encoded: false };
  }
  return { body: body.toString('base64'), isBase64Encoded: true };
}

/** The payload format 2.0 event API Gateway would hand the function for `request` on a matched route. */
export function toApiGatewayEvent(
  request: IncomingMessage,
  line: RequestLine,
  match: NonNullable<ReturnType<typeof matchRoute>>,
  now: Date = new Date(),
  body: Buffer = Buffer.alloc(0),
): APIGatewayProxyEventV2 {
  const { headers, cookies } = headersOf(request);
  const queryStringParameters = queryParameters(line.rawQueryString);
  const hasPathParameters = Object.keys(match.pathParameters).length > 0;
  return {
    version: '2.0',
    routeKey: match.routeKey,
    rawPath: line.rawPath,
    rawQueryString: line.rawQueryString,
    ...(cookies === undefined ? {} : { cookies }),
    headers,
    ...(queryStringParameters === undefined ? {} : { queryStringParameters }),
    ...(hasPathParameters ? { pathParameters: match.pathParameters } : {}),
    ...eventBody(body, headers),
    requestContext: {
      accountId: ACCOUNT_ID,
      apiId: 'local',
      domainName: headers.host ?? HOST,
      domainPrefix: (headers.host ?? HOST).split('.')[0] ?? HOST,
      http: {
        method: line.method,
        path: line.rawPath,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? HOST,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: newRequestId(),
      routeKey: match.routeKey,
      stage: STAGE,
      time: requestTime(now),
      timeEpoch: now.getTime(),
    },
  };
}

/** Reads the request body to its end; undefined once it grew past the limit (the rest is never read). */
async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) return undefined;
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of request) {
    bytes += (chunk as Buffer).length;
    if (bytes > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, bytes);
}

class IntegrationTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`The API function did not answer within ${timeoutMs} ms`);
    this.name = 'IntegrationTimeoutError';
  }
}

function writeResult(response: ServerResponse, result: GatewayResult, requestId: string): void {
  const headers: Record<string, string | string[]> = { 'apigw-requestid': requestId };
  for (const [name, value] of Object.entries(result.headers ?? {}))
    headers[name.toLowerCase()] = String(value);
  if (result.cookies !== undefined && result.cookies.length > 0) headers['set-cookie'] = result.cookies;
  const text = result.body ?? '';
  const body = result.isBase64Encoded === true ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8');
  // A 304 or 204 has no body by definition; everything else says its length, as API Gateway does.
  if (result.statusCode !== 304 && result.statusCode !== 204) headers['content-length'] = String(body.length);
  response.writeHead(result.statusCode, headers);
  response.end(body);
}

const tooLarge = (message: string) => jsonResult(413, 'PayloadTooLarge', message);

export async function startHttpGateway(options: HttpGatewayOptions): Promise<RunningHttpGateway> {
  const onError = options.onError ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? API_GATEWAY_TIMEOUT_MS;
  const functionName = options.functionName ?? serviceName('api');
  const inFlight = new Set<Promise<void>>();
  // One that outlives the gateway's timeout runs on to the function's own timeout, as on Lambda.
  const invocations = new DeadlineInvocations();

  /** Invokes the function, or fails with `IntegrationTimeoutError` once the request's time is up. */
  function invoke(event: APIGatewayProxyEventV2, deadline: number): Promise<unknown> {
    return invocations.invoke(
      options.handler,
      event,
      { functionName, region: LOCAL_REGION, memoryMiB: API.memoryMiB },
      deadline,
      () => new IntegrationTimeoutError(timeoutMs),
    );
  }

  async function route(
    request: IncomingMessage,
    body: Buffer,
    receivedAt: number,
  ): Promise<{ result: GatewayResult; requestId: string }> {
    const line = requestLine(request);
    const match = matchRoute(line.method, line.rawPath);
    const page = line.method === 'GET' ? options.staticPages?.[line.rawPath] : undefined;
    if (page !== undefined) {
      return {
        result: { statusCode: 200, headers: { ...page.headers }, body: page.html },
        requestId: newRequestId(),
      };
    }
    if (match === undefined) {
      const requestId = newRequestId();
      const allowed = ROUTE_METHODS.filter((method) => matchRoute(method, line.rawPath) !== undefined);
      // API Gateway itself answers 404 to a known path with a method it has no route for; a 405 naming the
      // allowed methods says more to someone exploring the local API, and no client of ours depends on either.
      if (allowed.length > 0) {
        const message = `${line.method} is not allowed on ${line.rawPath}; use ${allowed.join(', ')}`;
        return {
          result: jsonResult(405, 'MethodNotAllowed', message, { allow: allowed.join(', ') }),
          requestId,
        };
      }
      return {
        result: jsonResult(404, 'NotFound', `No route for ${line.method} ${line.rawPath}`),
        requestId,
      };
    }
    const event = toApiGatewayEvent(request, line, match, new Date(receivedAt), body);
    const requestId = event.requestContext.requestId;
    const eventBytes = Buffer.byteLength(JSON.stringify(event), 'utf8');
    if (eventBytes > MAX_EVENT_BYTES) {
      return {
        result: tooLarge(
          `The request makes a ${eventBytes}-byte event; Lambda takes at most ${MAX_EVENT_BYTES}`,
        ),
        requestId,
      };
    }
    try {
      const parsed = resultSchema.safeParse(await invoke(event, receivedAt + timeoutMs));
      if (parsed.success) return { result: parsed.data, requestId };
      onError(new Error(`The API function returned a malformed result: ${parsed.error.message}`));
    } catch (error) {
      onError(error);
      if (error instanceof IntegrationTimeoutError) {
        return {
          result: jsonResult(503, 'ServiceUnavailable', 'The request took too long; try again later'),
          requestId,
        };
      }
    }
    return {
      result: jsonResult(500, 'InternalError', 'The request could not be served; try again later'),
      requestId: event.requestContext.requestId,
    };
  }

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    try {
      const body = await readBody(request);
      if (body === undefined) {
        // Answer first, then drop the connection: the rest of the body is never read.
        response.setHeader('connection', 'close');
        response.once('finish', () => request.destroy());
        writeResult(response, tooLarge(`Request body is over ${MAX_BODY_BYTES} bytes`), newRequestId());
        return;
      }
      const { result, requestId } = await route(request, body, receivedAt);
      writeResult(response, result, requestId);
    } catch (error) {
      onError(error);
      if (!response.headersSent)
        writeResult(response, jsonResult(500, 'InternalError', 'Internal error'), '');
      else response.destroy();
    }
  }

  const server: Server = createServer((request, response) => {
    const served = serve(request, response).finally(() => inFlight.delete(served));
    inFlight.add(served);
  });
  const port = await listenOnLoopback(server, options.port);

  let stopped: Promise<void> | undefined;
  return {
    url: `http://${HOST}:${port}`,
    port,
    stop() {
      stopped ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all(inFlight);
        await invocations.settled();
        // Keep-alive connections would otherwise hold the server (and the process) open until they time out.
        server.closeAllConnections();
        await closed;
      })();
      return stopped;
    },
  };
}
