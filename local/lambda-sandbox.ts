/**
 * Local Lambda functions that run as they would deployed: the function's entry file bundled with esbuild as CDK
 * bundles it, loaded in a worker thread of its own with the environment CloudFormation would give it, a heap
 * capped from its `MemorySize`, and its timeout enforced by ending the sandbox, as Lambda does. Each concurrent
 * invocation gets a sandbox of its own; idle sandboxes are reused (warm starts), a failed one is replaced.
 *
 * What a worker thread cannot copy is Lambda's CPU share (one vCPU at 1,769 MB, proportionally less below): the
 * local functions run at the machine's speed (`docs/operations.md`).
 */

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Context } from 'aws-lambda';
import { type BuildOptions, build } from 'esbuild';
import { InvocationTimeoutError } from './lambda-invocation';
import type { Invocation, InvocationAnswer, SerializedError } from './sandbox-runtime';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUNDLE_DIRECTORY = join(PROJECT_ROOT, 'node_modules', '.cache', 'subtask-progress', 'functions');
/** What a bundle is made of: the functions' code and the sandbox runtime. */
const BUNDLE_SOURCES = [
  'lambdas',
  'local/lambda-sandbox.ts',
  'local/sandbox-runtime.ts',
  'local/sandbox-clock.ts',
  'local/lambda-invocation.ts',
];

/**
 * Lambda ends a function whose whole sandbox outgrows `MemorySize`; a worker can cap only its V8 heap, so the heap
 * gets the function's memory less what the runtime, the code and buffers outside the heap take.
 */
const RUNTIME_RESERVE_MIB = 64;

export function heapLimitMiB(memoryMiB: number): number {
  return Math.max(32, memoryMiB - RUNTIME_RESERVE_MIB);
}

/** What Lambda reports when a function runs out of memory: the invocation fails and the sandbox is gone. */
export class OutOfMemoryError extends Error {
  constructor(functionName: string, memoryMiB: number) {
    super(`${functionName} ran out of memory (MemorySize ${memoryMiB} MB)`);
    this.name = 'Runtime.OutOfMemory';
  }
}

/** An error the function threw, carried out of its sandbox with its name and message. */
export class FunctionError extends Error {
  constructor(error: SerializedError) {
    super(error.message);
    this.name = error.name;
    if (error.stack !== undefined) this.stack = error.stack;
  }
}

async function digestOf(paths: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  const visit = async (path: string): Promise<void> => {
    if ((await stat(path)).isDirectory()) {
      for (const entry of (await readdir(path)).sort()) await visit(join(path, entry));
    } else
      hash
        .update(path)
        .update('\0')
        .update(await readFile(path))
        .update('\0');
  };
  for (const path of paths) await visit(join(PROJECT_ROOT, path));
  return hash.digest('hex').slice(0, 16);
}

/**
 * How code of ours is bundled to run on Node outside Lambda (sandboxes, crash children, the bench's function), as
 * the deployed bundles are built (cdk/service-function.ts): ES module builds first, the SDK inside.
 */
export const NODE_BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  mainFields: ['module', 'main'],
  // The SDK's CommonJS modules, bundled into ESM, still `require` Node's built-ins.
  banner: {
    js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
  logLevel: 'error',
} satisfies BuildOptions;

const bundles = new Map<string, Promise<string>>();

/** The bundle of `entry` (relative to the project root) with the sandbox runtime, built once per source digest. */
export function functionBundle(entry: string): Promise<string> {
  let bundle = bundles.get(entry);
  if (bundle === undefined) {
    bundle = (async () => {
      const name = entry.replace(/[/.]/g, '-');
      const path = join(BUNDLE_DIRECTORY, `${name}-${await digestOf([...BUNDLE_SOURCES, entry])}.mjs`);
      if (
        await stat(path).then(
          () => true,
          () => false,
        )
      )
        return path;
      await mkdir(BUNDLE_DIRECTORY, { recursive: true });
      const partial = `${path}.${process.pid}.mjs`;
      const file = (relative: string) => JSON.stringify(join(PROJECT_ROOT, relative));
      await build({
        stdin: {
          // The clock first, so the function's modules capture its `Date.now`.
          contents: [
            `import ${file('local/sandbox-clock.ts')};`,
            `import { serve } from ${file('local/sandbox-runtime.ts')};`,
            `import { handler } from ${file(entry)};`,
            'serve(handler);',
          ].join('\n'),
          resolveDir: PROJECT_ROOT,
          loader: 'ts',
        },
        outfile: partial,
        ...NODE_BUNDLE_OPTIONS,
        sourcemap: 'inline',
        sourcesContent: false,
      });
      await rename(partial, path);
      return path;
    })();
    bundles.set(entry, bundle);
    bundle.catch(() => bundles.delete(entry));
  }
  return bundle;
}

export interface LambdaFunctionOptions {
  readonly functionName: string;
  /** Entry file relative to the project root, as the CDK construct names it. */
  readonly entry: string;
  /** The function's whole environment, as Lambda would set it. */
  readonly environment: Readonly<Record<string, string>>;
  readonly memoryMiB: number;
  readonly timeoutSeconds: number;
  readonly region: string;
}

export interface InvokeOptions {
  /** Epoch ms by which the invocation must end. @default now + the function's timeout */
  readonly deadline?: number;
  /** The function's clock runs this far ahead of the real one during the invocation. @default 0 */
  readonly clockOffsetMs?: number;
}

interface Pending {
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** One execution environment: a worker thread serving one invocation at a time. */
class Sandbox {
  private pending: Pending | undefined;
  private nextId = 0;
  readonly exited: Promise<void>;

  private readonly timeoutSeconds: number;

  private constructor(
    private readonly worker: Worker,
    options: LambdaFunctionOptions,
  ) {
    this.timeoutSeconds = options.timeoutSeconds;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (answer: InvocationAnswer) => this.settle(answer));
    worker.on('error', (error: Error & { code?: string }) => {
      this.fail(
        error.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new OutOfMemoryError(options.functionName, options.memoryMiB)
          : error,
      );
    });
    worker.on('exit', (code) =>
      this.fail(new Error(`${options.functionName}'s runtime exited with code ${code}`)),
    );
  }

  static start(bundle: string, options: LambdaFunctionOptions): Sandbox {
    const worker = new Worker(bundle, {
      env: { ...options.environment },
      workerData: {
        functionName: options.functionName,
        region: options.region,
        memoryMiB: options.memoryMiB,
      },
      resourceLimits: { maxOldGenerationSizeMb: heapLimitMiB(options.memoryMiB) },
    });
    return new Sandbox(worker, options);
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  private settle(answer: InvocationAnswer): void {
    const pending = this.pending;
    this.pending = undefined;
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    if (answer.ok) pending.resolve(answer.result);
    else pending.reject(new FunctionError(answer.error));
  }

  private fail(error: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    pending.reject(error);
  }

  /**
   * Runs one invocation. The function is stopped at its own timeout, whatever it is doing, as Lambda stops it (the
   * next invocation gets a fresh sandbox); `deadline` is what its context counts down to, which a stand-in may set
   * sooner (API Gateway's budget on a test gateway), never later.
   */
  invoke(event: unknown, deadline: number, clockOffsetMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timeoutMs = this.timeoutSeconds * 1000;
      const timer = setTimeout(() => {
        this.fail(new InvocationTimeoutError(timeoutMs));
        void this.worker.terminate();
      }, timeoutMs);
      const contextDeadline = Math.min(deadline, Date.now() + timeoutMs);
      this.pending = { resolve, reject, timer };
      const invocation: Invocation = { id: this.nextId++, event, deadline: contextDeadline, clockOffsetMs };
      this.worker.postMessage(invocation);
    });
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}

/** A local function: invocations run in sandboxes of their own, as many at once as are asked for. */
export class LambdaFunction {
  private readonly idle: Sandbox[] = [];
  private readonly all = new Set<Sandbox>();
  private stopped = false;

  constructor(
    private readonly bundle: string,
    readonly options: LambdaFunctionOptions,
  ) {}

  static async create(options: LambdaFunctionOptions): Promise<LambdaFunction> {
    return new LambdaFunction(await functionBundle(options.entry), options);
  }

  async invoke(event: unknown, { deadline, clockOffsetMs = 0 }: InvokeOptions = {}): Promise<unknown> {
    if (this.stopped) throw new Error(`${this.options.functionName} is stopped`);
    const sandbox = this.idle.pop() ?? this.started();
    let healthy = false;
    try {
      const result = await sandbox.invoke(
        event,
        deadline ?? Date.now() + this.options.timeoutSeconds * 1000,
        clockOffsetMs,
      );
      healthy = true;
      return result;
    } catch (error) {
      // An error the handler threw leaves its sandbox usable; a timeout, a crash or running out of memory not.
      healthy = error instanceof FunctionError;
      throw error;
    } finally {
      if (healthy && !this.stopped) this.idle.push(sandbox);
      else this.retire(sandbox);
    }
  }

  /** The function as an event source's stand-in calls a handler: the context's remaining time is the deadline. */
  readonly handler = (event: unknown, context: Context): Promise<unknown> =>
    this.invoke(event, { deadline: Date.now() + context.getRemainingTimeInMillis() });

  private started(): Sandbox {
    const sandbox = Sandbox.start(this.bundle, this.options);
    this.all.add(sandbox);
    return sandbox;
  }

  private retire(sandbox: Sandbox): void {
    this.all.delete(sandbox);
    void sandbox.stop();
  }

  /** Ends every sandbox; an invocation still running fails. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.idle.length = 0;
    await Promise.all([...this.all].map((sandbox) => sandbox.stop()));
    this.all.clear();
  }
}
