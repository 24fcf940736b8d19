/**
 * The test's side of a crash: a Lambda function in a child process of its own, SIGKILLed when it reports that
 * it reached its kill point.
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { NODE_BUNDLE_OPTIONS } from '../../local/lambda-sandbox';
import { type CrashOutcome, KILL_MARKER, type KillReport, RESPONSE_MARKER } from './crash-protocol';

const CHILD_TIMEOUT_MS = 30_000;

export type ChildKind = 'applier' | 'aggregator';

export interface ChildBundles {
  readonly directory: string;
  readonly paths: Readonly<Record<ChildKind, string>>;
  remove(): Promise<void>;
}

/**
 * The children run as esbuild bundles, as the deployed Lambdas do: started with plain `node` one is ready in
 * about a third of the time `node --import tsx` needs, and the crash tests start some sixty of them.
 */
export async function bundleChildren(): Promise<ChildBundles> {
  const directory = await mkdtemp(join(tmpdir(), 'crashing-lambdas-'));
  await build({
    entryPoints: {
      applier: fileURLToPath(new URL('./crashing-applier.ts', import.meta.url)),
      aggregator: fileURLToPath(new URL('./crashing-aggregator.ts', import.meta.url)),
    },
    outdir: directory,
    outExtension: { '.js': '.mjs' },
    ...NODE_BUNDLE_OPTIONS,
  });
  return {
    directory,
    paths: { applier: join(directory, 'applier.mjs'), aggregator: join(directory, 'aggregator.mjs') },
    remove: () => rm(directory, { recursive: true, force: true }),
  };
}

interface PendingRun<Response> {
  readonly resolve: (outcome: CrashOutcome<Response>) => void;
  readonly reject: (error: Error) => void;
}

/**
 * One Lambda process serving invocation after invocation until a kill point is reached; then it is SIGKILLed,
 * and the invocation's outcome is settled only once the process is gone, so that a redelivery never overlaps it.
 */
export class LambdaProcess<Input, Response> {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly closed: Promise<void>;
  private stderr = '';
  private pending: PendingRun<Response> | undefined;
  private killedAt: KillReport | undefined;

  constructor(bundle: string, environment: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [bundle], { env: environment, stdio: 'pipe' });
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
    });
    // A dead process's stdin fails the next write; the pending run learns of the death from 'close'.
    this.child.stdin.on('error', () => undefined);
    this.child.on('error', (error) => this.settle((run) => run.reject(error)));
    createInterface({ input: this.child.stdout }).on('line', (line) => this.read(line));
    // 'close', not 'exit': stdout has been read to its end by then.
    this.closed = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        const killedAt = this.killedAt;
        this.settle((run) =>
          killedAt === undefined
            ? run.reject(new Error(`The Lambda process ended (${signal ?? code}) mid-batch:\n${this.stderr}`))
            : run.resolve({ kind: 'killed', report: killedAt }),
        );
        resolve();
      });
    });
  }

  private settle(action: (run: PendingRun<Response>) => void): void {
    const run = this.pending;
    this.pending = undefined;
    if (run !== undefined) action(run);
  }

  private read(line: string): void {
    if (line.startsWith(KILL_MARKER)) {
      this.killedAt = JSON.parse(line.slice(KILL_MARKER.length)) as KillReport;
      this.child.kill('SIGKILL');
    } else if (line.startsWith(RESPONSE_MARKER)) {
      const response = JSON.parse(line.slice(RESPONSE_MARKER.length)) as Response;
      this.settle((run) => run.resolve({ kind: 'responded', response }));
    }
  }

  /** Hands the process one invocation; it answers, or dies at its kill point. */
  run(input: Input): Promise<CrashOutcome<Response>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`The Lambda process neither reached its kill point nor answered:\n${this.stderr}`));
      }, CHILD_TIMEOUT_MS);
      const done =
        <T>(settle: (value: T) => void) =>
        (value: T) => {
          clearTimeout(timer);
          settle(value);
        };
      this.pending = { resolve: done(resolve), reject: done(reject) };
      this.child.stdin.write(`${JSON.stringify(input)}\n`);
    });
  }

  async stop(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.closed;
  }
}

/**
 * Keeps one process started ahead: after a kill the next one is already loaded, so a crash costs the test
 * little more than the redelivery.
 */
export class WarmProcesses<Input, Response> {
  private current: LambdaProcess<Input, Response> | undefined;
  private spare: LambdaProcess<Input, Response> | undefined;

  constructor(
    private readonly bundle: string,
    private readonly environment: NodeJS.ProcessEnv,
  ) {}

  private start(): LambdaProcess<Input, Response> {
    return new LambdaProcess<Input, Response>(this.bundle, this.environment);
  }

  async run(input: Input): Promise<CrashOutcome<Response>> {
    if (this.current === undefined) {
      this.current = this.spare ?? this.start();
      this.spare = undefined;
    }
    // The next process loads while this one works.
    this.spare ??= this.start();
    const outcome = await this.current.run(input);
    if (outcome.kind === 'killed') this.current = undefined;
    return outcome;
  }

  async stop(): Promise<void> {
    await Promise.all([this.current?.stop(), this.spare?.stop()]);
    this.current = undefined;
    this.spare = undefined;
  }
}
