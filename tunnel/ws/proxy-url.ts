/**
 * What a proxy for WebSocket dials may be, checked once for the config field and again for a
 * proxy named by the environment at dial time: a URL whose scheme says how the dial goes through.
 *
 *   http://   CONNECT over plain TCP to the proxy
 *   https://  CONNECT over TLS to the proxy (its certificate checked against the system's CAs,
 *             plus NODE_EXTRA_CA_CERTS)
 *   socks5:// SOCKS5, this node resolving the peer's host name
 *   socks5h:// SOCKS5, the proxy resolving it
 *
 * Credentials in the URL (`user:pass@`) go to the proxy (Basic auth, SOCKS5 username/password).
 */
export const PROXY_SCHEMES: readonly string[] = ['http:', 'https:', 'socks5:', 'socks5h:'];

export const PROXY_FORM = '"http://", "https://", "socks5://" or "socks5h://" followed by "[user:pass@]host:port"';

/** The proxy URL; throws an Error whose message is the reason it is not one. */
export function parseProxyUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`not a URL; expected ${PROXY_FORM}`);
  }
  if (!PROXY_SCHEMES.includes(url.protocol)) {
    throw new Error(`scheme "${url.protocol}" not supported; expected ${PROXY_FORM}`);
  }
  if (url.hostname === '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new Error(`expected ${PROXY_FORM} (a host and port, no path)`);
  }
  return url;
}
