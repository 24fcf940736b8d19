import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// This machine runs Node 20; the SDK's notice that its 2027 releases need Node 22 would repeat in every worker.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Vitest's default on two cores is one worker, which leaves a core idle while a file waits on the emulators:
    // two files at a time cut the suite by about a quarter there.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    env: { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' },
  },
});
