import { describe, expect, it } from 'vitest';
import {
  DATA_MIN_LEN,
  HEADER_ERR_FLAGS,
  HEADER_ERR_SHORT,
  HEADER_ERR_TRUNCATED,
  HEADER_ERR_TYPE,
  HEADER_ERR_VERSION,
  HEADER_LEN,
  MSG_DATA,
  MSG_PROBE,
  MSG_PROBE_REPLY,
  PROBE_LEN,
  PROBE_MIN_LEN,
  FLAG_AUTHENTICATED,
  readFlags,
  UDP_OVERHEAD_IPV4,
  UDP_OVERHEAD_IPV6,
  checkHeader,
  headerCheckName,
  readProbeTimestamp,
  readSenderId,
  readSeq,
  writeHeader,
  writeProbeTimestamp,
} from './udp-header.js';

describe('udp header', () => {
  it('has the documented size and overheads', () => {
    expect(HEADER_LEN).toBe(12);
    expect(UDP_OVERHEAD_IPV4).toBe(40);
    expect(UDP_OVERHEAD_IPV6).toBe(60);
    expect(1500 - UDP_OVERHEAD_IPV4).toBe(1460);
  });

  it.each([
    { type: MSG_DATA, senderId: 0x12345678, seq: 0, len: DATA_MIN_LEN },
    { type: MSG_PROBE, senderId: 0xffffffff, seq: 0xffffffff, len: PROBE_LEN },
    { type: MSG_PROBE_REPLY, senderId: 1, seq: 42, len: PROBE_LEN + 100 },
  ])('round trips type $type at an offset', ({ type, senderId, seq, len }) => {
    const off = 7;
    const buf = Buffer.alloc(off + len);
    writeHeader(buf, off, type, senderId, seq);
    expect(checkHeader(buf, off, len)).toBe(type);
    expect(readSenderId(buf, off)).toBe(senderId);
    expect(readSeq(buf, off)).toBe(seq);
  });

  it('writes the exact bytes of the contract (big endian)', () => {
    const buf = Buffer.alloc(HEADER_LEN);
    writeHeader(buf, 0, MSG_PROBE, 0x0a0b0c0d, 0x01020304);
    expect([...buf]).toEqual([1, 2, 0, 0, 0x0a, 0x0b, 0x0c, 0x0d, 1, 2, 3, 4]);
  });

  it('carries the authenticated flag in bit 0 of the flags; tagged probes are 36 bytes', () => {
    const buf = Buffer.alloc(PROBE_LEN);
    writeHeader(buf, 0, MSG_PROBE, 0x0a0b0c0d, 0x01020304, FLAG_AUTHENTICATED);
    expect([...buf.subarray(0, HEADER_LEN)]).toEqual([1, 2, 0, 1, 0x0a, 0x0b, 0x0c, 0x0d, 1, 2, 3, 4]);
    expect(readFlags(buf, 0)).toBe(1);
    expect(PROBE_LEN).toBe(36);
    expect(checkHeader(buf, 0, PROBE_LEN)).toBe(MSG_PROBE);
    // An untagged probe passes the header check: the transport refuses it as unauthenticated.
    writeHeader(buf, 0, MSG_PROBE, 1, 1);
    expect(checkHeader(buf, 0, PROBE_MIN_LEN)).toBe(MSG_PROBE);
  });

  it('round trips a probe timestamp', () => {
    const buf = Buffer.alloc(PROBE_LEN);
    writeHeader(buf, 0, MSG_PROBE, 5, 6);
    writeProbeTimestamp(buf, 0, 1_700_000_000_123.456);
    expect(readProbeTimestamp(buf, 0)).toBe(1_700_000_000_123.456);
  });

  const valid = (type: number, len: number): Buffer => {
    const buf = Buffer.alloc(Math.max(len, HEADER_LEN));
    writeHeader(buf, 0, type, 99, 1);
    return buf;
  };

  it.each([
    { name: 'empty', buf: Buffer.alloc(0), len: 0, want: HEADER_ERR_SHORT },
    { name: '11 bytes', buf: valid(MSG_DATA, 11), len: 11, want: HEADER_ERR_SHORT },
    { name: 'version 0', buf: Object.assign(valid(MSG_DATA, 40), { 0: 0 }), len: 40, want: HEADER_ERR_VERSION },
    { name: 'version 2', buf: Object.assign(valid(MSG_DATA, 40), { 0: 2 }), len: 40, want: HEADER_ERR_VERSION },
    { name: 'type 0', buf: Object.assign(valid(MSG_DATA, 40), { 1: 0 }), len: 40, want: HEADER_ERR_TYPE },
    { name: 'type 4', buf: Object.assign(valid(MSG_DATA, 40), { 1: 4 }), len: 40, want: HEADER_ERR_TYPE },
    { name: 'type 255', buf: Object.assign(valid(MSG_DATA, 40), { 1: 255 }), len: 40, want: HEADER_ERR_TYPE },
    { name: 'flags high', buf: Object.assign(valid(MSG_DATA, 40), { 2: 0x80 }), len: 40, want: HEADER_ERR_FLAGS },
    { name: 'flags bit 1', buf: Object.assign(valid(MSG_PROBE, 40), { 3: 2 }), len: 40, want: HEADER_ERR_FLAGS },
    { name: 'authenticated data', buf: Object.assign(valid(MSG_DATA, 40), { 3: 1 }), len: 40, want: HEADER_ERR_FLAGS },
    { name: 'authenticated probe without tag', buf: Object.assign(valid(MSG_PROBE, PROBE_MIN_LEN), { 3: 1 }), len: PROBE_MIN_LEN, want: HEADER_ERR_TRUNCATED },
    { name: 'data, header only', buf: valid(MSG_DATA, HEADER_LEN), len: HEADER_LEN, want: HEADER_ERR_TRUNCATED },
    { name: 'data, 19-byte packet', buf: valid(MSG_DATA, DATA_MIN_LEN - 1), len: DATA_MIN_LEN - 1, want: HEADER_ERR_TRUNCATED },
    { name: 'probe without timestamp', buf: valid(MSG_PROBE, PROBE_MIN_LEN - 1), len: PROBE_MIN_LEN - 1, want: HEADER_ERR_TRUNCATED },
    { name: 'reply without timestamp', buf: valid(MSG_PROBE_REPLY, HEADER_LEN), len: HEADER_LEN, want: HEADER_ERR_TRUNCATED },
  ])('refuses $name', ({ buf, len, want }) => {
    expect(checkHeader(buf, 0, len)).toBe(want);
    expect(headerCheckName(want)).not.toBe('unknown');
  });

  it('checks only the given length, not the buffer size', () => {
    const buf = valid(MSG_DATA, 100);
    expect(checkHeader(buf, 0, 100)).toBe(MSG_DATA);
    expect(checkHeader(buf, 0, 20)).toBe(HEADER_ERR_TRUNCATED);
  });
});
