import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { componentLogger, createRootLogger } from './logger.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { stream, lines: () => chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('root logger', () => {
  it('writes JSON lines with a level label, the component and the fixed fields', () => {
    const out = capture();
    const root = createRootLogger({ level: 'info', stream: out.stream });
    const router = componentLogger(root.log, 'router');
    router.info({ node: 'node-b', subnet: '10.244.2.0/24' }, 'peer added');
    router.debug({ node: 'node-b' }, 'hidden at info');
    router.error({ err: new Error('boom') }, 'failed');
    const [first, second, third] = out.lines();
    expect(out.lines()).toHaveLength(2);
    expect(first).toMatchObject({ level: 'info', component: 'router', node: 'node-b', subnet: '10.244.2.0/24', msg: 'peer added' });
    expect(typeof first?.['time']).toBe('string');
    expect(second).toMatchObject({ level: 'error', err: { type: 'Error', message: 'boom' } });
    expect(third).toBeUndefined();
  });

  it('changes level at run time', () => {
    const out = capture();
    const root = createRootLogger({ level: 'warn', stream: out.stream });
    root.log.info('before');
    root.setLevel('debug');
    root.log.debug('after');
    expect(out.lines().map((l) => l['msg'])).toEqual(['after']);
  });

  it('takes only the fields of the vocabulary (core/log-fields.ts; the type check in `npm test` fails otherwise)', () => {
    const out = capture();
    const { log } = createRootLogger({ level: 'info', stream: out.stream });
    log.info({ peer: 'node-b', subnet: '10.244.2.0/24', rttMs: 0.5 }, 'peer added');
    // @ts-expect-error -- 'nodeName' is not a log field: the vocabulary says 'node' (this node) or 'peer'.
    log.info({ nodeName: 'node-b' }, 'refused by the type checker');
    // @ts-expect-error -- a field's type is fixed too: rttMs is a number.
    log.info({ rttMs: 'fast' }, 'refused by the type checker');
    expect(out.lines()[0]).toMatchObject({ peer: 'node-b', subnet: '10.244.2.0/24', rttMs: 0.5, msg: 'peer added' });
  });
});
