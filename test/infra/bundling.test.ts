import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineSubtaskProgressApp } from '../../cdk/subtask-progress-app';
import { ENVIRONMENT } from '../../lambdas/service-settings';
import { testApp } from './synthesize';

const bundledFunction = z.object({
  Type: z.literal('AWS::Lambda::Function'),
  Properties: z.object({ Code: z.object({ S3Key: z.string() }) }),
});

/**
 * What the handlers need at load time, all four merged (applier: table, dead-letter queue, receive limit;
 * aggregator: table, event bus; API and sweeper: table); a deployed function gets its names from the stack.
 */
const HANDLER_ENVIRONMENT = {
  [ENVIRONMENT.tableName]: 'progress-table',
  [ENVIRONMENT.deadLetterQueueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/dead-letters',
  [ENVIRONMENT.receiveLimit]: '5',
  [ENVIRONMENT.eventBusName]: 'default',
  AWS_REGION: 'eu-west-1',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

describe('the deployable assembly', () => {
  // The one synthesis that bundles for real and runs every validation, exactly as `cdk synth` does.
  const app = testApp({ bundle: true });
  // The app `cdk/app.ts` defines, cdk-nag included.
  const stack = defineSubtaskProgressApp(app);
  // In a test process an open finding makes synth() throw, with the report as its message.
  const assembly = app.synth();
  const assetDirectories = Object.values(assembly.getStackByName(stack.stackName).template.Resources).flatMap(
    (resource) => {
      const fn = bundledFunction.safeParse(resource);
      return fn.success
        ? [join(assembly.directory, `asset.${fn.data.Properties.Code.S3Key.replace(/\.zip$/, '')}`)]
        : [];
    },
  );

  it('passes cdk-nag and the built-in template validation', () => {
    const report = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8'));
    expect(report.pluginReports).toEqual([]);
  });

  it('bundles each function into one minified ES module with its source map', () => {
    // Applier, aggregator, API function, sweeper.
    expect(assetDirectories).toHaveLength(4);
    for (const directory of assetDirectories) {
      expect(readdirSync(directory).sort()).toEqual(['index.mjs', 'index.mjs.map']);
      const code = readFileSync(join(directory, 'index.mjs'), 'utf8');
      expect(code.startsWith("import { createRequire } from 'node:module';")).toBe(true);
      expect(code).toMatch(/export\s*\{[^}]*\bhandler\b/);
    }
  });

  it('produces bundles that Node loads as ES modules and that export a handler', () => {
    for (const directory of assetDirectories) {
      // A fresh Node process, as Lambda would start one: ESM loading errors (a bare `require`, a missing
      // module) and configuration errors surface at import, before any event arrives.
      const script = `const m = await import(${JSON.stringify(join(directory, 'index.mjs'))});
        process.stdout.write(typeof m.handler);`;
      const loaded = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { PATH: process.env.PATH, ...HANDLER_ENVIRONMENT },
        encoding: 'utf8',
      });
      expect(loaded).toBe('function');
    }
  });
});
