import { describe, expect, it } from 'vitest';
import { main } from '../node-bootstrap/cli/cli.js';
import { EXIT_USAGE } from '../node-bootstrap/cli/command.js';
import { demoCommand } from './demo-command.js';

describe('podtun demo (flags)', () => {
  it('refuses an unknown --mode with usage, exit 2', async () => {
    let out = '';
    let err = '';
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t) };
    const code = await main(['demo', '--mode', 'vxlan'], {}, io, { demo: demoCommand });
    expect(code).toBe(EXIT_USAGE);
    expect(err).toMatch(/--mode: "vxlan" is not one of podtun\|kernel-routing/);
    expect(err + out).toContain('Usage:');
  });
});
