/** A DoctorReport as text (one line per check, a hint on each failure, a total) or as JSON. */
import type { DoctorReport } from './doctor-check.js';

export interface RenderOptions {
  json?: boolean;
  /** ✔/✖ when true (a terminal), OK/FAIL otherwise. */
  symbols?: boolean;
}

export function formatDoctorReport(result: DoctorReport, options: RenderOptions = {}): string {
  if (options.json === true) return `${JSON.stringify({ ok: result.exitCode === 0, checks: result.checks }, null, 2)}\n`;
  const [good, notable, bad] = options.symbols === true ? ['✔', '!', '✖'] : ['OK', 'WARN', 'FAIL'];
  const lines = result.checks.map((c) => {
    const hint = (!c.ok || c.warning === true) && c.hint !== '' ? ` (${c.hint})` : '';
    return `${c.ok ? (c.warning === true ? notable : good) : bad} ${c.layer} ${c.name}: ${c.detail}${hint}`;
  });
  const failed = result.checks.filter((c) => !c.ok).length;
  const warnings = result.checks.filter((c) => c.warning === true).length;
  const noted = warnings === 0 ? '' : ` (${warnings} warning${warnings === 1 ? '' : 's'})`;
  lines.push(failed === 0 ? `all ${result.checks.length} checks passed${noted}` : `${failed} of ${result.checks.length} checks failed${noted}`);
  return `${lines.join('\n')}\n`;
}
