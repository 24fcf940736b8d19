/** Servers of ours that listen on loopback only: the dashboard's proxy and the local stack's endpoints. */

import type { Server } from 'node:http';

export const LOOPBACK_HOST = '127.0.0.1';

/** Starts `server` on 127.0.0.1 (`port` 0 picks a free one) and resolves to the port it listens on. */
export async function listenOnLoopback(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, LOOPBACK_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('The server has no TCP address');
  return address.port;
}
