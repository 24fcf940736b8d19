/**
 * The endpoint a local function's AWS SDK clients call instead of the emulators: it reads each request as AWS
 * would authorize it (the action and the resource ARNs it touches), checks it against that function's role
 * statements from the synthesized template, and either forwards it to DynamoDB Local or the SQS emulator or
 * answers the `AccessDeniedException` AWS would send. DynamoDB Local and the SQS emulator allow everything; with
 * this in front, a call the CDK grants do not cover fails locally as it would on AWS.
 *
 * It also stands in for EventBridge: an allowed `PutEvents` goes to the local event publisher (the events file).
 */

import { randomUUID } from 'node:crypto';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { z } from 'zod';
import { LOOPBACK_HOST, listenOnLoopback } from '../client/loopback-server';
import type { ServiceEvent } from '../lambdas/core/events';
import type { EventPublisher } from '../lambdas/events/event-publisher';
import { serviceName } from '../lambdas/service-settings';
import { evaluate, type PolicyStatement } from './iam-policy';
import type { FunctionName } from './synthesized-stack';

export interface Denial {
  readonly function: FunctionName;
  readonly action: string;
  readonly resource: string;
}

export interface IamGatewayOptions {
  /** The function whose role this gateway enforces; it names the principal in denials. */
  readonly function: FunctionName;
  readonly statements: readonly PolicyStatement[];
  readonly region: string;
  readonly accountId: string;
  readonly dynamoEndpoint: string;
  readonly sqsEndpoint: string;
  readonly events: EventPublisher;
  /** Every call denied, before the denial is answered. */
  readonly onDenied?: (denial: Denial) => void;
}

export interface RunningIamGateway {
  /** Set as the function's `AWS_ENDPOINT_URL_*`: one endpoint serves every service it calls. */
  readonly url: string;
  stop(): Promise<void>;
}

/** One call as IAM sees it: an action on each of some resources (a batch may name several tables). */
interface Authorization {
  readonly service: 'dynamodb' | 'streams' | 'sqs' | 'events';
  readonly checks: readonly { readonly action: string; readonly resource: string }[];
}

const body = z.record(z.string(), z.unknown());
const named = (value: unknown) => (typeof value === 'string' ? value : '');

/** DynamoDB Local names its own region (`ddblocal`) in ARNs; policies name the stack's. */
function normalizedDynamoArn(arn: string, region: string, accountId: string): string {
  return arn.replace(/^arn:aws:dynamodb:[^:]*:[^:]*:/, `arn:aws:dynamodb:${region}:${accountId}:`);
}

/** The write each kind of transaction item is authorized as. */
const TRANSACT_ACTIONS = {
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  ConditionCheck: 'ConditionCheckItem',
  Get: 'GetItem',
} as const;

/** Batch calls are authorized as the single-message action on the queue. */
const SQS_BATCH_ACTIONS: Readonly<Record<string, string>> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};

class Authorizer {
  /** Stream iterators are opaque; IAM checks `GetRecords` against the stream they were issued for. */
  private readonly iteratorStreams = new Map<string, string>();

  constructor(private readonly options: IamGatewayOptions) {}

  private tableArn(name: string, index?: string): string {
    const { region, accountId } = this.options;
    const table = `arn:aws:dynamodb:${region}:${accountId}:table/${name}`;
    return index === undefined ? table : `${table}/index/${index}`;
  }

  private queueArn(queueUrlOrName: string): string {
    const name = queueUrlOrName.split('/').pop() ?? queueUrlOrName;
    return `arn:aws:sqs:${this.options.region}:${this.options.accountId}:${name}`;
  }

  private busArn(nameOrArn: string): string {
    if (nameOrArn.startsWith('arn:')) return nameOrArn;
    return `arn:aws:events:${this.options.region}:${this.options.accountId}:event-bus/${nameOrArn}`;
  }

  private dynamo(operation: string, input: Record<string, unknown>): Authorization['checks'] {
    const action = `dynamodb:${operation}`;
    if (operation === 'BatchGetItem' || operation === 'BatchWriteItem') {
      return Object.keys(body.parse(input.RequestItems ?? {})).map((table) => ({
        action,
        resource: this.tableArn(table),
      }));
    }
    if (operation === 'TransactWriteItems' || operation === 'TransactGetItems') {
      return z
        .array(body)
        .parse(input.TransactItems ?? [])
        .flatMap((item) =>
          Object.entries(TRANSACT_ACTIONS).flatMap(([kind, itemAction]) => {
            const part = item[kind];
            if (part === undefined) return [];
            return [
              {
                action: `dynamodb:${itemAction}`,
                resource: this.tableArn(named(body.parse(part).TableName)),
              },
            ];
          }),
        );
    }
    if (typeof input.TableName !== 'string') return [{ action, resource: '*' }];
    const index = typeof input.IndexName === 'string' ? input.IndexName : undefined;
    return [{ action, resource: this.tableArn(input.TableName, index) }];
  }

  private stream(operation: string, input: Record<string, unknown>): Authorization['checks'] {
    const action = `dynamodb:${operation}`;
    const { region, accountId } = this.options;
    if (typeof input.StreamArn === 'string') {
      return [{ action, resource: normalizedDynamoArn(input.StreamArn, region, accountId) }];
    }
    if (typeof input.ShardIterator === 'string') {
      return [
        { action, resource: this.iteratorStreams.get(input.ShardIterator) ?? 'unknown-shard-iterator' },
      ];
    }
    return [{ action, resource: '*' }];
  }

  /** What `request` asks for, or undefined when it is not a call this gateway knows how to authorize. */
  authorization(target: string, input: Record<string, unknown>): Authorization | undefined {
    const [prefix, operation = ''] = target.split('.', 2);
    switch (prefix) {
      case 'DynamoDB_20120810':
        return { service: 'dynamodb', checks: this.dynamo(operation, input) };
      case 'DynamoDBStreams_20120810':
        return { service: 'streams', checks: this.stream(operation, input) };
      case 'AmazonSQS': {
        const queue = named(input.QueueUrl) || named(input.QueueName);
        const action = `sqs:${SQS_BATCH_ACTIONS[operation] ?? operation}`;
        return { service: 'sqs', checks: [{ action, resource: queue === '' ? '*' : this.queueArn(queue) }] };
      }
      case 'AWSEvents': {
        const entries = z.array(body).parse(input.Entries ?? []);
        const buses = new Set(entries.map((entry) => named(entry.EventBusName) || 'default'));
        return {
          service: 'events',
          checks: [...buses].map((bus) => ({ action: `events:${operation}`, resource: this.busArn(bus) })),
        };
      }
      default:
        return undefined;
    }
  }

  /** Remembers which stream the iterators in a streams response belong to. */
  rememberIterators(input: Record<string, unknown>, output: Record<string, unknown>): void {
    const { region, accountId } = this.options;
    const stream =
      typeof input.StreamArn === 'string'
        ? normalizedDynamoArn(input.StreamArn, region, accountId)
        : this.iteratorStreams.get(named(input.ShardIterator));
    if (stream === undefined) return;
    for (const key of ['ShardIterator', 'NextShardIterator']) {
      const iterator = output[key];
      if (typeof iterator === 'string') this.iteratorStreams.set(iterator, stream);
    }
  }
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

interface UpstreamAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

function forward(agent: Agent, endpoint: string, request: IncomingMessage, payload: Buffer) {
  const url = new URL(request.url ?? '/', endpoint);
  const headers = { ...request.headers, host: url.host, 'content-length': String(payload.length) };
  return new Promise<UpstreamAnswer>((resolve, reject) => {
    const outgoing = httpRequest(url, { method: request.method, headers, agent }, (response) => {
      readBody(response).then(
        (answer) => resolve({ status: response.statusCode ?? 502, headers: response.headers, body: answer }),
        reject,
      );
    });
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}

function send(response: ServerResponse, status: number, headers: Record<string, string>, payload: string) {
  response.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(payload) });
  response.end(payload);
}

const JSON_1_0 = 'application/x-amz-json-1.0';
const JSON_1_1 = 'application/x-amz-json-1.1';

export async function startIamGateway(options: IamGatewayOptions): Promise<RunningIamGateway> {
  const authorizer = new Authorizer(options);
  const agent = new Agent({ keepAlive: true });
  const role = serviceName(options.function);
  const principal = `arn:aws:sts::${options.accountId}:assumed-role/${role}-role/${role}`;

  function deny(response: ServerResponse, service: Authorization['service'], denial: Denial, reason: string) {
    options.onDenied?.(denial);
    const message =
      `User: ${principal} is not authorized to perform: ${denial.action} on resource: ${denial.resource} ` +
      reason;
    const headers: Record<string, string> = {
      'content-type': service === 'events' ? JSON_1_1 : JSON_1_0,
      'x-amzn-requestid': randomUUID(),
    };
    if (service === 'sqs') headers['x-amzn-query-error'] = 'AccessDenied;Sender';
    const type =
      service === 'events' ? 'AccessDeniedException' : 'com.amazon.coral.service#AccessDeniedException';
    send(response, 400, headers, JSON.stringify({ __type: type, message, Message: message }));
  }

  async function putEvents(response: ServerResponse, input: Record<string, unknown>) {
    const entries = z
      .array(z.object({ DetailType: z.string(), Detail: z.string() }))
      .parse(input.Entries ?? []);
    const events: ServiceEvent[] = entries.map((entry) => ({
      detailType: entry.DetailType,
      detail: z.object({ event_id: z.string() }).loose().parse(JSON.parse(entry.Detail)),
    }));
    await options.events.publish(events);
    const answer = { FailedEntryCount: 0, Entries: events.map(() => ({ EventId: randomUUID() })) };
    send(response, 200, { 'content-type': JSON_1_1 }, JSON.stringify(answer));
  }

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const payload = await readBody(request);
    const target = named(request.headers['x-amz-target']);
    const input = payload.length === 0 ? {} : body.parse(JSON.parse(payload.toString('utf8')));
    const authorization = authorizer.authorization(target, input);
    if (authorization === undefined) {
      send(
        response,
        400,
        { 'content-type': JSON_1_0 },
        JSON.stringify({
          __type: 'UnknownOperationException',
          message: `The local IAM gateway does not know the call '${target || request.url}'`,
        }),
      );
      return;
    }
    for (const check of authorization.checks) {
      const decision = evaluate(options.statements, check.action, check.resource);
      if (!decision.allowed) {
        deny(
          response,
          authorization.service,
          { function: options.function, ...check },
          decision.reason ?? '',
        );
        return;
      }
    }
    if (authorization.service === 'events') {
      await putEvents(response, input);
      return;
    }
    const endpoint = authorization.service === 'sqs' ? options.sqsEndpoint : options.dynamoEndpoint;
    const answer = await forward(agent, endpoint, request, payload);
    if (authorization.service === 'streams' && answer.status === 200) {
      authorizer.rememberIterators(input, body.parse(JSON.parse(answer.body.toString('utf8'))));
    }
    const headers = Object.fromEntries(
      Object.entries(answer.headers).flatMap(([name, value]) =>
        value === undefined || name === 'connection' || name === 'keep-alive' ? [] : [[name, value]],
      ),
    );
    response.writeHead(answer.status, headers);
    response.end(answer.body);
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      if (!response.headersSent) {
        send(
          response,
          500,
          { 'content-type': JSON_1_0 },
          JSON.stringify({ __type: 'InternalFailure', message }),
        );
      } else response.destroy();
    });
  });
  const port = await listenOnLoopback(server, 0);
  return {
    url: `http://${LOOPBACK_HOST}:${port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
