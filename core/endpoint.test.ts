import { describe, expect, it } from 'vitest';
import { EndpointError, formatEndpoint, parseEndpoint, parseEndpointOrName } from './endpoint.js';

describe('parseEndpoint', () => {
  it.each([
    { text: '192.168.77.1:8285', host: '192.168.77.1', port: 8285, family: 4 },
    { text: '0.0.0.0:1', host: '0.0.0.0', port: 1, family: 4 },
    { text: '127.0.0.1:65535', host: '127.0.0.1', port: 65535, family: 4 },
    { text: '[fd00::1]:8285', host: 'fd00::1', port: 8285, family: 6 },
    { text: '[::]:8285', host: '::', port: 8285, family: 6 },
    { text: '[FD00:0:0:0:0:0:0:1]:53', host: 'fd00::1', port: 53, family: 6 },
  ])('parses $text', ({ text, host, port, family }) => {
    expect(parseEndpoint(text)).toEqual({ host, port, family });
  });

  it.each([
    { text: '', why: /no port/ },
    { text: '192.168.77.1', why: /no port/ },
    { text: '192.168.77.1:', why: /port "" is not a number/ },
    { text: ':8285', why: /empty host/ },
    { text: '192.168.77.1:0', why: /from 1 to 65535/ },
    { text: '192.168.77.1:65536', why: /from 1 to 65535/ },
    { text: '192.168.77.1:-1', why: /is not a number/ },
    { text: '192.168.77.1:80a', why: /is not a number/ },
    { text: '192.168.77.1:080000', why: /is not a number/ },
    { text: '192.168.77.256:8285', why: /is not an IP address/ },
    { text: 'node-a.example:8285', why: /is not an IP address/ },
    { text: 'fd00::1:8285', why: /needs brackets, e.g. "\[fd00::1\]:8285"/ },
    { text: '[fd00::1]', why: /no port after "\]"/ },
    { text: '[fd00::1]8285', why: /no port after "\]"/ },
    { text: '[fd00::1:8285', why: /no closing "\]"/ },
    { text: '[192.168.1.1]:8285', why: /brackets are for IPv6/ },
    { text: '[fe80::1%eth0]:8285', why: /is not an IP address/ },
    { text: '[]:8285', why: /empty host/ },
  ])('refuses "$text"', ({ text, why }) => {
    let caught: unknown;
    try {
      parseEndpoint(text);
    } catch (err: unknown) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EndpointError);
    expect((caught as EndpointError).code).toBe('ERR_PODTUN_ENDPOINT');
    expect((caught as EndpointError).message).toMatch(why);
  });

  it('keeps the cause of a bad host', () => {
    try {
      parseEndpoint('300.1.1.1:80');
      expect.unreachable();
    } catch (err: unknown) {
      expect((err as Error).cause).toBeInstanceOf(Error);
    }
  });

  it('accepts port 0 only when asked (listen addresses)', () => {
    expect(() => parseEndpoint('127.0.0.1:0')).toThrow(EndpointError);
    expect(parseEndpoint('127.0.0.1:0', { allowPortZero: true }).port).toBe(0);
  });

  it('formats with brackets for IPv6', () => {
    expect(formatEndpoint('10.0.0.1', 8285)).toBe('10.0.0.1:8285');
    expect(formatEndpoint('fd00::1', 8285)).toBe('[fd00::1]:8285');
  });
});

describe('parseEndpointOrName', () => {
  it.each([
    { text: '192.168.77.1:8285', want: { host: '192.168.77.1', port: 8285, family: 4 } },
    { text: '[fd00::1]:8285', want: { host: 'fd00::1', port: 8285, family: 6 } },
    { text: 'node-b.example.net:8285', want: { name: 'node-b.example.net', port: 8285 } },
    { text: 'Node-B.Example.NET.:53', want: { name: 'node-b.example.net', port: 53 } },
    { text: 'nodeb:1', want: { name: 'nodeb', port: 1 } },
    { text: '3com.example:80', want: { name: '3com.example', port: 80 } },
  ])('reads $text', ({ text, want }) => {
    expect(parseEndpointOrName(text)).toEqual(want);
  });

  it.each([
    { text: 'node-b.example.net', why: /no port/ },
    { text: 'node-b.example.net:0', why: /from 1 to 65535/ },
    { text: '-node.example:8285', why: /neither an IP address nor a host name/ },
    { text: 'node_b.example:8285', why: /neither an IP address nor a host name/ },
    { text: 'node..example:8285', why: /neither an IP address nor a host name/ },
    { text: '10.0.0.300:8285', why: /neither an IP address nor a host name/ },
    { text: `${'a'.repeat(64)}.example:8285`, why: /neither an IP address nor a host name/ },
    { text: '[node-b.example]:8285', why: /is not an IP address/ },
    { text: 'fd00::1:8285', why: /needs brackets/ },
  ])('refuses "$text"', ({ text, why }) => {
    expect(() => parseEndpointOrName(text)).toThrow(EndpointError);
    expect(() => parseEndpointOrName(text)).toThrow(why);
  });
});
