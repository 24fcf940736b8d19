/** Entry point of `npm run reconcile` (see `reconcile.ts`). */

import { runReconcile } from './reconcile';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await runReconcile(process.argv.slice(2), {
  env: process.env,
  out: (line) => console.log(line),
  err: (line) => console.error(line),
});
