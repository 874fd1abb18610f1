/**
 * The agent a WebSocket dial goes through when a proxy is named (proxy-url.ts says which URLs):
 * https-proxy-agent for http:// and https:// proxies (CONNECT; TLS to the proxy for https://),
 * socks-proxy-agent for socks5:// and socks5h://. The only importer of both. Either one upgrades
 * the tunnel to TLS itself for a wss:// peer, with the tls options ws passes (CA, identity check).
 */
import type { Agent } from 'node:http';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { SocksProxyAgent } from 'socks-proxy-agent';
import { parseProxyUrl } from './proxy-url.js';

export interface ProxyAgentOptions {
  /** Aborted when the dial is given up: ends a connection to the proxy still waiting for its answer. */
  readonly signal: AbortSignal;
  /** How long a SOCKS proxy may take to connect us (its client takes no signal). */
  readonly timeoutMs: number;
}

/** An agent for `proxy`; throws an Error naming the reason for a URL proxy-url.ts refuses. */
export function proxyAgent(proxy: string, options: ProxyAgentOptions): Agent {
  const url = parseProxyUrl(proxy);
  if (url.protocol === 'socks5:' || url.protocol === 'socks5h:') {
    return new SocksProxyAgent(url, { timeout: options.timeoutMs });
  }
  return new HttpsProxyAgent(url, { signal: options.signal });
}
