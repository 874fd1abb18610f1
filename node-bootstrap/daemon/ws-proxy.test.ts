import { afterEach, describe, expect, it, vi } from 'vitest';
import { proxyResolver, redactProxy } from './ws-proxy.js';

describe('proxyResolver', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  function clearProxyEnv(): void {
    for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY', 'WS_PROXY', 'WSS_PROXY']) {
      vi.stubEnv(name, '');
      vi.stubEnv(name.toLowerCase(), '');
    }
  }

  it('uses the config proxy for every peer, whatever the environment says', () => {
    clearProxyEnv();
    vi.stubEnv('NO_PROXY', '*');
    const proxyFor = proxyResolver('http://u:p@10.0.0.1:3128');
    expect(proxyFor('ws://192.168.77.2:8443')).toBe('http://u:p@10.0.0.1:3128');
    expect(proxyFor('wss://node-b.example:443')).toBe('http://u:p@10.0.0.1:3128');
  });

  it('reads HTTPS_PROXY for wss://, HTTP_PROXY for ws://, and honours NO_PROXY', () => {
    clearProxyEnv();
    vi.stubEnv('HTTPS_PROXY', 'http://10.0.0.1:3128');
    vi.stubEnv('HTTP_PROXY', 'http://10.0.0.2:8888');
    vi.stubEnv('NO_PROXY', '192.168.77.3,.internal');
    const proxyFor = proxyResolver(undefined);
    expect(proxyFor('wss://node-b.example:443')).toBe('http://10.0.0.1:3128');
    expect(proxyFor('ws://192.168.77.2:8080')).toBe('http://10.0.0.2:8888');
    expect(proxyFor('ws://192.168.77.3:8080')).toBeUndefined();
    expect(proxyFor('wss://node-c.internal:8443')).toBeUndefined();
  });

  it('passes https:// and SOCKS5 proxies from the environment on as they are', () => {
    clearProxyEnv();
    vi.stubEnv('HTTPS_PROXY', 'https://user:pass@proxy.example:443');
    vi.stubEnv('ALL_PROXY', 'socks5h://10.0.0.9:1080');
    const proxyFor = proxyResolver(undefined);
    expect(proxyFor('wss://node-b.example:443')).toBe('https://user:pass@proxy.example:443');
    expect(proxyFor('ws://192.168.77.2:8080')).toBe('socks5h://10.0.0.9:1080');
    expect(proxyResolver('socks5://10.0.0.9:1080')('wss://node-b.example:443')).toBe('socks5://10.0.0.9:1080');
  });

  it('lower-case variables and ALL_PROXY count too; nothing set means direct', () => {
    clearProxyEnv();
    const proxyFor = proxyResolver(undefined);
    expect(proxyFor('wss://node-b.example:443')).toBeUndefined();
    vi.stubEnv('all_proxy', 'http://10.0.0.9:3128');
    expect(proxyFor('ws://192.168.77.2:8080')).toBe('http://10.0.0.9:3128');
    vi.stubEnv('https_proxy', 'http://10.0.0.1:3128');
    expect(proxyFor('wss://node-b.example:443')).toBe('http://10.0.0.1:3128');
  });
});

describe('redactProxy', () => {
  it.each([
    ['http://10.0.0.1:3128', 'http://10.0.0.1:3128'],
    ['http://user:secret@10.0.0.1:3128', 'http://redacted@10.0.0.1:3128'],
    ['not a url', '[unparseable proxy URL]'],
  ])('%s -> %s', (input, output) => {
    expect(redactProxy(input)).toBe(output);
  });
});
