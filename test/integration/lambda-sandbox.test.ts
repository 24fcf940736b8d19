import { afterEach, describe, expect, it } from 'vitest';
import { InvocationTimeoutError } from '../../local/lambda-invocation';
import { FunctionError, heapLimitMiB, LambdaFunction, OutOfMemoryError } from '../../local/lambda-sandbox';

const started: LambdaFunction[] = [];

async function probe(memoryMiB: number, timeoutSeconds = 10, environment: Record<string, string> = {}) {
  const fn = await LambdaFunction.create({
    functionName: 'probe',
    entry: 'test/support/sandbox-probe.ts',
    environment,
    memoryMiB,
    timeoutSeconds,
    region: 'us-east-1',
  });
  started.push(fn);
  return fn;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((fn) => fn.stop()));
});

describe('a local Lambda function', () => {
  it("sees the environment it was given, not this process's", async () => {
    process.env.SANDBOX_PROBE_PARENT_ONLY = 'parent';
    const fn = await probe(128, 10, { TABLE_NAME: 'tasks' });

    const seen = await fn.invoke({ kind: 'environment', names: ['TABLE_NAME', 'SANDBOX_PROBE_PARENT_ONLY'] });

    expect(seen).toEqual({ TABLE_NAME: 'tasks', SANDBOX_PROBE_PARENT_ONLY: null });
  });

  it('runs out of memory past its MemorySize, as on Lambda, and the next invocation gets a fresh sandbox', async () => {
    const fn = await probe(256);

    await expect(fn.invoke({ kind: 'allocate', mebibytes: 400 })).rejects.toBeInstanceOf(OutOfMemoryError);
    expect(await fn.invoke({ kind: 'count' })).toEqual({ invocations: 1 });
  });

  it('holds what fits in its heap: the cap follows MemorySize', async () => {
    const fn = await probe(512);

    expect(heapLimitMiB(512)).toBeGreaterThan(300);
    expect(await fn.invoke({ kind: 'allocate', mebibytes: 300 })).toEqual({ heldMiB: 300 });
  });

  it('is stopped at its timeout, and the next invocation gets a fresh sandbox', async () => {
    const fn = await probe(128, 1);

    await expect(fn.invoke({ kind: 'sleep', ms: 5_000 })).rejects.toBeInstanceOf(InvocationTimeoutError);
    expect(await fn.invoke({ kind: 'count' })).toEqual({ invocations: 1 });
  });

  it('keeps a warm sandbox after an error the handler threw, and carries the error out by name', async () => {
    const fn = await probe(128);
    await fn.invoke({ kind: 'count' });

    const failure = fn.invoke({ kind: 'throw', message: 'bad input' });

    await expect(failure).rejects.toBeInstanceOf(FunctionError);
    await expect(failure).rejects.toMatchObject({ name: 'RangeError', message: 'bad input' });
    expect(await fn.invoke({ kind: 'count' })).toEqual({ invocations: 3 });
  });

  it('gives concurrent invocations sandboxes of their own', async () => {
    const fn = await probe(128);

    const [first, second] = await Promise.all([
      fn.invoke({ kind: 'sleep', ms: 300 }).then(() => fn.invoke({ kind: 'count' })),
      fn.invoke({ kind: 'sleep', ms: 300 }),
    ]);

    expect(first).toEqual({ invocations: 2 });
    expect(second).toEqual({ slept: 300 });
  });

  it('runs with its clock moved by the offset asked for, even through a `Date.now` captured at load', async () => {
    const fn = await probe(128);
    const hour = 3_600_000;

    const { now } = (await fn.invoke({ kind: 'clock' }, { clockOffsetMs: hour })) as { now: number };

    expect(now - Date.now()).toBeGreaterThan(hour - 5_000);
    expect(now - Date.now()).toBeLessThanOrEqual(hour);
  });
});
