/** Entry point of `npm run smoke`: the post-deploy smoke test (see `smoke-command.ts`). */

import { runSmokeCommand } from './smoke-command';

// The SDK's notice that its 2027 releases need Node 22 would otherwise open the report.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await runSmokeCommand(process.argv.slice(2), {
  env: process.env,
  out: (line) => console.log(line),
  err: (line) => console.error(line),
});
