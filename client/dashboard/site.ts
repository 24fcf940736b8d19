/**
 * The dashboard as one HTML document: the page's script (`page/main.ts`, bundled and minified with esbuild) and
 * its style inlined, so serving it is one response and its Content-Security-Policy can allow exactly those two
 * by hash and nothing else (no other origin, no inline code it does not know). Built once per process.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface DashboardOptions {
  /** Whether the page offers Cancel: the local stack does; `dashboard --read-only` does not. */
  readonly canCancel: boolean;
}

export interface DashboardDocument {
  readonly html: string;
  /** The headers to serve `html` with. */
  readonly headers: Readonly<Record<string, string>>;
}

const PAGE = fileURLToPath(new URL('./page/', import.meta.url));

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** `</` inside inline code would end its element early. */
const inline = (code: string) => code.replace(/<\/(script|style)/gi, '<\\/$1');

export async function buildDashboard({ canCancel }: DashboardOptions): Promise<DashboardDocument> {
  const [bundle, style] = await Promise.all([
    build({
      entryPoints: [`${PAGE}main.ts`],
      bundle: true,
      minify: true,
      write: false,
      format: 'iife',
      target: 'es2022',
      legalComments: 'none',
    }),
    readFile(`${PAGE}style.css`, 'utf8'),
  ]);
  const script = inline(bundle.outputFiles[0]?.text ?? '');
  const css = inline(style);
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Subtask progress</title>
<style>${css}</style>
</head>
<body data-can-cancel="${canCancel}">
<header><a href="#/" class="home">Subtask progress</a><span id="freshness" role="status" aria-live="polite"></span></header>
<main id="view" tabindex="-1"></main>
<script>${script}</script>
</body>
</html>
`;
  return {
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'content-security-policy':
        `default-src 'none'; script-src ${sha256(script)}; style-src ${sha256(css)}; ` +
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    },
  };
}
