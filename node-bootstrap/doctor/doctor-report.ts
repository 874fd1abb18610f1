/** A DoctorReport as text (one line per check, a hint on each failure, a total) or as JSON. */
import type { DoctorReport } from './doctor-check.js';

export interface RenderOptions {
  json?: boolean;
  /** ✔/✖ when true (a terminal), OK/FAIL otherwise. */
  symbols?: boolean;
}

export function formatDoctorReport(result: DoctorReport, options: RenderOptions = {}): string {
  if (options.json === true) return `${JSON.stringify({ ok: result.exitCode === 0, checks: result.checks }, null, 2)}\n`;
  const [good, bad] = options.symbols === true ? ['✔', '✖'] : ['OK', 'FAIL'];
  const lines = result.checks.map((c) => {
    const hint = !c.ok && c.hint !== '' ? ` (${c.hint})` : '';
    return `${c.ok ? good : bad} ${c.layer} ${c.name}: ${c.detail}${hint}`;
  });
  const failed = result.checks.filter((c) => !c.ok).length;
  lines.push(failed === 0 ? `all ${result.checks.length} checks passed` : `${failed} of ${result.checks.length} checks failed`);
  return `${lines.join('\n')}\n`;
}
