/**
 * `npm run bench:initialize`: initializes 100,000 and 1,000,000 subtasks through the API function as the default
 * deployment runs it, and prints requests, seconds and peak memory per size. The function is the esbuild bundle
 * of `lambdas/api/handler.ts` in a child process with a heap limit derived from its memory size, held to the CPU
 * share that memory size buys on Lambda (`cpulimit`), invoked with its timeout: past it the process is killed, as
 * Lambda kills it. The PUT is repeated while it answers 202, as the client does. DynamoDB Local (started here)
 * takes only a few hundred conditional puts a second, so sizes from `--acknowledge` on reach it through a stand-in
 * that acknowledges subtask writes (puts and transactions of puts) without storing them, every other call going
 * through to DynamoDB Local: that measures the function's own CPU and memory, not the emulator. Figures only; nothing here asserts a time.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { build } from 'esbuild';
import { documentClient } from '../lambdas/aws-clients';
import { ENVIRONMENT } from '../lambdas/service-settings';
import { TaskStore } from '../lambdas/store/task-store';
import { freePort, LOCAL_CREDENTIALS, LOCAL_REGION, LOOPBACK, startDynamoDbLocal } from '../local/emulators';
import { NODE_BUNDLE_OPTIONS } from '../local/lambda-sandbox';
import { createTaskTable } from '../local/resources';

const USAGE = `npm run bench:initialize -- [options]
  --sizes=100000,1000000   subtasks per task (subtask_count), one task each
  --memory=256             the function's MemorySize in MiB (the API function's default)
  --timeout=29             the function's timeout in seconds (the API function's default)
  --cpu=15                 percent of one core (Lambda gives one vCPU at 1,769 MB: 256 MB is ~15 %)
  --acknowledge=1000000    from this size on, subtask writes are acknowledged by a stand-in, not stored
  --max-minutes=15         stop a size after this long and extrapolate from what was measured`;

/**
 * V8's limits as Lambda's Node.js runtime derives them from MemorySize: a tenth for the young generation (half of
 * it per semi-space), the rest for the old space. Lambda ends the sandbox when its memory passes MemorySize.
 */
function heapLimits(memoryMiB: number): { oldSpaceMiB: number; semiSpaceMiB: number } {
  const youngMiB = Math.floor(memoryMiB / 10);
  return { oldSpaceMiB: memoryMiB - youngMiB, semiSpaceMiB: Math.floor(youngMiB / 2) };
}
/** Lambda gives a function one full vCPU at this much memory, and a proportional share below it. */
const FULL_VCPU_MIB = 1_769;

interface Settings {
  readonly sizes: readonly number[];
  readonly memoryMiB: number;
  readonly timeoutMs: number;
  readonly cpuPercent: number;
  readonly acknowledgeFrom: number;
  readonly maxMs: number;
}

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '100000,1000000' },
      memory: { type: 'string', default: '256' },
      timeout: { type: 'string', default: '29' },
      cpu: { type: 'string' },
      acknowledge: { type: 'string', default: '1000000' },
      'max-minutes': { type: 'string', default: '15' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const memoryMiB = Number(values.memory);
  return {
    sizes: values.sizes.split(',').map(Number),
    memoryMiB,
    timeoutMs: Number(values.timeout) * 1000,
    cpuPercent: Number(values.cpu ?? Math.ceil((memoryMiB / FULL_VCPU_MIB) * 100)),
    acknowledgeFrom: Number(values.acknowledge),
    maxMs: Number(values['max-minutes']) * 60_000,
  };
}

async function bundleFunction(): Promise<{ path: string; remove: () => Promise<void> }> {
  const directory = await mkdtemp(join(tmpdir(), 'api-function-'));
  await build({
    entryPoints: { api: fileURLToPath(new URL('./api-function-process.ts', import.meta.url)) },
    outdir: directory,
    outExtension: { '.js': '.mjs' },
    ...NODE_BUNDLE_OPTIONS,
  });
  return { path: join(directory, 'api.mjs'), remove: () => rm(directory, { recursive: true, force: true }) };
}

/**
 * In front of DynamoDB Local: acknowledges every subtask `PutItem` at once without storing it, and passes every
 * other call (the task item, counters, progress, reads) through unchanged.
 */
async function startAcknowledgingProxy(
  target: string,
): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const upstream = new URL(target);
  const server = createServer((incoming: IncomingMessage, outgoing: ServerResponse) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      const target = String(incoming.headers['x-amz-target'] ?? '');
      const isWrite = target.endsWith('.PutItem') || target.endsWith('.TransactWriteItems');
      if (isWrite && /"sk":\{"S":"SUB#/.test(body.toString('utf8'))) {
        outgoing.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        outgoing.end('{}');
        return;
      }
      const forwarded = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers: incoming.headers,
        },
        (answer) => {
          outgoing.writeHead(answer.statusCode ?? 500, answer.headers);
          answer.pipe(outgoing);
        },
      );
      forwarded.on('error', () => outgoing.destroy());
      forwarded.end(body);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, LOOPBACK, resolve));
  return {
    endpoint: `http://${LOOPBACK}:${port}`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface Answer {
  readonly result?: APIGatewayProxyStructuredResultV2;
  readonly maxRssMiB: number;
  readonly heapUsedMiB: number;
}

type Outcome =
  | {
      readonly kind: 'answered';
      readonly status: number;
      readonly retryAfterS: number;
      readonly answer: Answer;
    }
  | { readonly kind: 'timed out' }
  | { readonly kind: 'crashed'; readonly why: string };

/** Peak resident memory of a process so far (VmHWM), read from /proc while it runs. */
async function peakRssMiB(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const kib = status === undefined ? undefined : /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return kib === undefined ? undefined : Number(kib) / 1024;
}

/** One warm sandbox of the function: a child process under `cpulimit`, replaced after a timeout or a crash. */
class FunctionProcess {
  private child: ChildProcessWithoutNullStreams | undefined;
  private limiter: ChildProcessWithoutNullStreams | undefined;
  private lines: AsyncIterator<string> | undefined;
  private stderr = '';
  private watcher: NodeJS.Timeout | undefined;
  peakRssMiB = 0;
  heapAfterRequestMiB = 0;
  coldStarts = 0;

  constructor(
    private readonly bundle: string,
    private readonly environment: NodeJS.ProcessEnv,
    private readonly heap: { oldSpaceMiB: number; semiSpaceMiB: number },
    private readonly cpuPercent: number,
  ) {}

  private async start(): Promise<void> {
    this.coldStarts++;
    this.stderr = '';
    const heapFlags = [
      `--max-old-space-size=${this.heap.oldSpaceMiB}`,
      `--max-semi-space-size=${this.heap.semiSpaceMiB}`,
    ];
    const child = spawn(process.execPath, [...heapFlags, this.bundle], {
      env: this.environment,
      stdio: 'pipe',
    });
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-2_000);
    });
    child.stdin.on('error', () => undefined);
    this.child = child;
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    this.limiter = spawn('cpulimit', ['-l', String(this.cpuPercent), '-p', String(child.pid), '-z', '-q']);
    this.watcher = setInterval(() => void this.sample(child.pid), 250);
    const ready = await this.lines.next();
    if (ready.done === true) throw new Error(`The function did not start: ${this.stderr}`);
  }

  private async sample(pid: number | undefined): Promise<void> {
    const peak = pid === undefined ? undefined : await peakRssMiB(pid);
    if (peak !== undefined) this.peakRssMiB = Math.max(this.peakRssMiB, peak);
  }

  async invoke(event: APIGatewayProxyEventV2, timeoutMs: number): Promise<Outcome> {
    if (this.child === undefined) await this.start();
    const { child, lines } = this;
    if (child === undefined || lines === undefined) throw new Error('no function process');
    child.stdin.write(`${JSON.stringify({ event, timeoutMs })}\n`);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const line = await Promise.race([lines.next(), timedOut]);
    clearTimeout(timer);
    await this.sample(child.pid);
    if (line === 'timeout') {
      await this.stop();
      return { kind: 'timed out' };
    }
    if (line.done === true) {
      const why = this.stderr.trim().split('\n').slice(-3).join(' | ');
      await this.stop();
      return { kind: 'crashed', why };
    }
    const answer = JSON.parse(line.value) as Answer;
    this.heapAfterRequestMiB = Math.max(this.heapAfterRequestMiB, answer.heapUsedMiB);
    this.peakRssMiB = Math.max(this.peakRssMiB, answer.maxRssMiB);
    const retryAfter = Number(answer.result?.headers?.['retry-after'] ?? 0);
    return { kind: 'answered', status: answer.result?.statusCode ?? 0, retryAfterS: retryAfter, answer };
  }

  async stop(): Promise<void> {
    clearInterval(this.watcher);
    const { child, limiter } = this;
    this.child = undefined;
    this.lines = undefined;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    limiter?.kill();
  }
}

function putEvent(taskId: string, size: number): APIGatewayProxyEventV2 {
  const rawPath = `/tasks/${taskId}`;
  return {
    version: '2.0',
    routeKey: 'PUT /tasks/{task_id}',
    rawPath,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    pathParameters: { task_id: taskId },
    body: JSON.stringify({ action_name: 'emailed', total: size, subtask_count: size, prefix: 'sub' }),
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'bench',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method: 'PUT', path: rawPath, protocol: 'HTTP/1.1', sourceIp: LOOPBACK, userAgent: 'bench' },
      requestId: randomUUID(),
      routeKey: 'PUT /tasks/{task_id}',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
  };
}

interface SizeResult {
  readonly subtasks: number;
  readonly subtaskPuts: 'DynamoDB Local' | 'acknowledged';
  readonly finished: boolean;
  readonly requests: number;
  readonly timeouts: number;
  readonly crashes: number;
  readonly seconds: number;
  readonly written: number;
  readonly itemsPerRequest: number;
  readonly peakRssMiB: number;
  readonly heapAfterRequestMiB: number;
  /** When stopped early: requests and seconds the whole size would take at the rate measured. */
  readonly extrapolated?: { readonly requests: number; readonly seconds: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const count = (value: number) => Math.round(value).toLocaleString('en-US');

async function initializeOne(
  fn: FunctionProcess,
  store: TaskStore,
  size: number,
  run: Settings,
  subtaskPuts: SizeResult['subtaskPuts'],
): Promise<SizeResult> {
  const taskId = `bench-initialize-${size}-${randomUUID().slice(0, 8)}`;
  const started = performance.now();
  let [requests, timeouts, crashes, written, finished] = [0, 0, 0, 0, false];
  while (!finished && performance.now() - started < run.maxMs) {
    requests++;
    const requestStarted = performance.now();
    const outcome = await fn.invoke(putEvent(taskId, size), run.timeoutMs);
    const seconds = (performance.now() - requestStarted) / 1000;
    const task = await store.getTask(taskId);
    const before = written;
    written = task?.ready === true ? size : (task?.init_written ?? 0);
    const what = outcome.kind === 'answered' ? String(outcome.status) : outcome.kind;
    const why = outcome.kind === 'crashed' ? ` (${outcome.why})` : '';
    console.log(
      `  #${requests} ${what}${why} in ${seconds.toFixed(1)} s: ${count(written)} written (+${count(written - before)}), ` +
        `peak RSS ${fn.peakRssMiB.toFixed(0)} MiB`,
    );
    if (outcome.kind === 'answered') {
      if (outcome.status === 200 || outcome.status === 201) finished = true;
      else if (outcome.status === 202) await sleep(outcome.retryAfterS * 1000);
      else throw new Error(`PUT answered ${outcome.status}: ${outcome.answer.result?.body}`);
    } else {
      if (outcome.kind === 'timed out') timeouts++;
      else crashes++;
      // What the client does after a 5xx from API Gateway: wait, then the same PUT again.
      await sleep(1_000);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const itemsPerRequest = written / requests;
  return {
    subtasks: size,
    subtaskPuts,
    finished,
    requests,
    timeouts,
    crashes,
    seconds,
    written,
    itemsPerRequest,
    peakRssMiB: fn.peakRssMiB,
    heapAfterRequestMiB: fn.heapAfterRequestMiB,
    ...(finished || written === 0
      ? {}
      : {
          extrapolated: {
            requests: Math.ceil(size / itemsPerRequest),
            seconds: (seconds / written) * size,
          },
        }),
  };
}

async function main(): Promise<void> {
  const run = settings();
  const heap = heapLimits(run.memoryMiB);
  console.log(
    `API function: ${run.memoryMiB} MB (old space ${heap.oldSpaceMiB} MiB, semi-space ${heap.semiSpaceMiB} MiB), ${run.cpuPercent} % of a core, ` +
      `timeout ${run.timeoutMs / 1000} s; Node ${process.version}`,
  );
  const dynamodb = await startDynamoDbLocal();
  const proxy = await startAcknowledgingProxy(dynamodb.endpoint);
  const bundle = await bundleFunction();
  const client = new DynamoDBClient({
    endpoint: dynamodb.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const tableName = `bench-initialize-${randomUUID().slice(0, 8)}`;
  await createTaskTable(client, tableName);
  const store = new TaskStore(documentClient(client), tableName);
  const results: SizeResult[] = [];
  try {
    for (const size of run.sizes) {
      const acknowledged = size >= run.acknowledgeFrom;
      const fn = new FunctionProcess(
        bundle.path,
        {
          PATH: process.env.PATH,
          [ENVIRONMENT.tableName]: tableName,
          AWS_ENDPOINT_URL_DYNAMODB: acknowledged ? proxy.endpoint : dynamodb.endpoint,
          AWS_REGION: LOCAL_REGION,
          AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(run.memoryMiB),
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          POWERTOOLS_LOG_LEVEL: 'WARN',
        },
        heap,
        run.cpuPercent,
      );
      console.log(
        `${count(size)} subtasks, subtask puts ${acknowledged ? 'acknowledged by the stand-in' : 'to DynamoDB Local'}:`,
      );
      try {
        results.push(
          await initializeOne(fn, store, size, run, acknowledged ? 'acknowledged' : 'DynamoDB Local'),
        );
      } finally {
        await fn.stop();
      }
    }
  } finally {
    client.destroy();
    await bundle.remove();
    await proxy.stop();
    await dynamodb.stop();
  }
  console.log(
    '\n| subtasks | subtask puts | finished | requests | timeouts | crashes | seconds | items/request | peak RSS MiB | heap used after a request, MiB |',
  );
  console.log('|---:|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const result of results) {
    const extrapolated =
      result.extrapolated === undefined
        ? ''
        : ` (whole size at this rate: ~${count(result.extrapolated.requests)} requests, ~${count(result.extrapolated.seconds)} s)`;
    console.log(
      `| ${count(result.subtasks)} | ${result.subtaskPuts} | ${result.finished ? 'yes' : `no: ${count(result.written)} written${extrapolated}`} | ` +
        `${result.requests} | ${result.timeouts} | ${result.crashes} | ${result.seconds.toFixed(0)} | ${count(result.itemsPerRequest)} | ` +
        `${result.peakRssMiB.toFixed(0)} | ${result.heapAfterRequestMiB.toFixed(0)} |`,
    );
  }
  console.log(`\n${JSON.stringify({ settings: { ...run, ...heap }, results }, null, 2)}`);
}

await main();
