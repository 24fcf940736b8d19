/**
 * SigV4 for the deployed API, which API Gateway guards with IAM authorization: the same signer, hash and credential
 * chain the AWS SDK signs its own calls with.
 */

import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { ClientConfigurationError } from './errors';

export type Credentials = ConstructorParameters<typeof SignatureV4>[0]['credentials'];

// One provider per process: it caches what it resolved (and refreshes it before it expires).
let sharedCredentials: Credentials | undefined;

function defaultCredentials(): Credentials {
  sharedCredentials ??= defaultProvider();
  return sharedCredentials;
}

/** The local stack's API is open on loopback; anything else is taken to be API Gateway. */
export function isLoopback(url: URL): boolean {
  const host = url.hostname;
  return (
    host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127(\.\d+){3}$/.test(host)
  );
}

/**
 * Throws unless a signed request to `url` would travel encrypted. A SigV4 signature over plain HTTP gives anyone on
 * the path the request, its session token and a signature they can replay for five minutes: refused, whatever the
 * host (API Gateway itself only listens on HTTPS).
 */
export function assertSafeToSign(url: URL): void {
  if (url.protocol !== 'https:') {
    throw new ClientConfigurationError(
      `Refusing to send a signed request over plain ${url.protocol.replace(':', '')} to ${url.host}: ` +
        'use the https:// URL of the API (only a loopback URL, the local stack, may be plain http, and it is not signed)',
    );
  }
}

/**
 * Headers that authenticate a request to `url` as the caller's AWS identity, its body included. The path and
 * query are signed exactly as `url` will send them, so they must already be percent-encoded there.
 */
export async function signatureHeaders(
  method: string,
  url: URL,
  region: string,
  credentials: Credentials = defaultCredentials(),
  body?: string,
  headers: Readonly<Record<string, string>> = {},
): Promise<Record<string, string>> {
  assertSafeToSign(url);
  const signer = new SignatureV4({
    service: 'execute-api',
    region,
    credentials,
    sha256: Hash.bind(null, 'sha256'),
  });
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) query[key] = value;
  const signed = await signer.sign(
    new HttpRequest({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port === '' ? {} : { port: Number(url.port) }),
      path: url.pathname,
      query,
      headers: { ...headers, host: url.host },
      ...(body === undefined ? {} : { body }),
    }),
  );
  // fetch derives Host from the URL itself, and would refuse to be told.
  const { host: _host, ...signedHeaders } = signed.headers;
  return signedHeaders;
}
