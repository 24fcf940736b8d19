/** `dashboard`: serves the page and forwards its calls until Ctrl-C (see `dashboard/proxy.ts`). */
import { once } from 'node:events';
import { startDashboardProxy } from '../dashboard/proxy';
import { setting } from '../settings';
import type { Command } from './arguments';
import { EXIT } from './exit-codes';

export async function serveDashboard(command: Extract<Command, { kind: 'dashboard' }>): Promise<number> {
  const apiUrl = setting('apiUrl', undefined);
  const proxy = await startDashboardProxy({ apiUrl, port: command.port, canCancel: command.canCancel });
  console.log(
    `Dashboard for ${apiUrl}${command.canCancel ? '' : ' (read-only)'}:\n  ${proxy.url}\nCtrl-C stops it.`,
  );
  await once(process, 'SIGINT');
  await proxy.stop();
  return EXIT.interrupted;
}
