/**
 * Which proxy a WebSocket dial goes through: the `proxy` config field for every peer when set,
 * else the environment (HTTPS_PROXY for wss://, HTTP_PROXY for ws://, ALL_PROXY, NO_PROXY;
 * either case), as curl and most tools read it. Any scheme tunnel/ws/proxy-url.ts takes (http,
 * https, socks5, socks5h) may come from either; the dialer refuses, and logs, any other. The only
 * importer of `proxy-from-env`, which reads process.env when asked (node-bootstrap is where the
 * environment is read).
 */
import { getProxyForUrl } from 'proxy-from-env';

/** What WsTransport's `proxyFor` option wants: the proxy URL for a ws(s):// URL, or undefined. */
export type ProxyFor = (url: string) => string | undefined;

export function proxyResolver(configProxy: string | undefined): ProxyFor {
  if (configProxy !== undefined) return () => configProxy;
  return (url) => {
    // A WebSocket is an HTTP(S) request upgraded: the http(s)_proxy variables apply, not ws_proxy.
    const asHttp = url.replace(/^ws(s?):/i, 'http$1:');
    const proxy = getProxyForUrl(asHttp);
    return proxy === '' ? undefined : proxy;
  };
}

/** A proxy URL fit for logs: credentials replaced. */
export function redactProxy(proxy: string): string {
  try {
    const url = new URL(proxy);
    if (url.username === '' && url.password === '') return proxy;
    url.username = 'redacted';
    url.password = '';
    return url.href.replace(/\/$/, '');
  } catch {
    return '[unparseable proxy URL]';
  }
}
