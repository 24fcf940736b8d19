/** Entry point of the `subtask-progress` command (`npm run cli -- …`, or `bin/subtask-progress.mjs`). */

import { runCli } from './cli/run';

// The SDK's notice that its 2027 releases need Node 22 would otherwise open every command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await runCli(process.argv.slice(2));
