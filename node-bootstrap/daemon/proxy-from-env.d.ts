/** Types for the untyped npm `proxy-from-env` (v2), as ws-proxy.ts uses it. */
declare module 'proxy-from-env' {
  /** The proxy URL for `url` from *_PROXY / ALL_PROXY / NO_PROXY in process.env; '' for none. */
  export function getProxyForUrl(url: string | URL): string;
}
