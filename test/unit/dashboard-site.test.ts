/** The dashboard document: one small, self-contained page whose policy allows exactly its own code. */

import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildDashboard } from '../../client/dashboard/site';

const MAX_GZIPPED_BYTES = 30 * 1024;

describe('buildDashboard', () => {
  it('bundles the page into one document of at most 30 KB gzipped', async () => {
    const { html } = await buildDashboard({ canCancel: true });
    expect(gzipSync(html).length).toBeLessThanOrEqual(MAX_GZIPPED_BYTES);
  });

  it('allows only its inline script and style, and calls to its own origin', async () => {
    const { headers } = await buildDashboard({ canCancel: false });
    const policy = headers['content-security-policy'] ?? '';
    expect(policy).toMatch(/default-src 'none'/);
    expect(policy).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+';/);
    expect(policy).toMatch(/connect-src 'self'/);
    expect(policy).not.toContain('unsafe-inline');
  });

  it('tells the page whether to offer Cancel', async () => {
    expect((await buildDashboard({ canCancel: false })).html).toContain('data-can-cancel="false"');
    expect((await buildDashboard({ canCancel: true })).html).toContain('data-can-cancel="true"');
  });
});
