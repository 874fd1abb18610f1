import { describe, expect, it } from 'vitest';
import { proxyAgent } from './ws-proxy-agent.js';

const options = { signal: new AbortController().signal, timeoutMs: 1_000 };

describe('proxyAgent', () => {
  // What each agent does on the wire is tested against real proxies: test/netns/podtun-proxy.test.ts.
  it.each([
    ['http://10.0.0.1:3128', 'HttpsProxyAgent'],
    ['https://u:p@proxy.example:443', 'HttpsProxyAgent'],
    ['socks5://10.0.0.1:1080', 'SocksProxyAgent'],
    ['socks5h://u:p@proxy.example:1080', 'SocksProxyAgent'],
  ])('dials through %s with %s', (proxy, agent) => {
    expect(proxyAgent(proxy, options).constructor.name).toBe(agent);
  });

  it.each([
    ['socks4://10.0.0.1:1080', /scheme "socks4:" not supported/],
    ['proxy.example:3128', /scheme "proxy.example:" not supported/],
    ['http://10.0.0.1:3128/path', /no path/],
  ])('refuses %s, saying why', (proxy, why) => {
    expect(() => proxyAgent(proxy, options)).toThrow(why);
  });
});
