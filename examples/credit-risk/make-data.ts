/**
 * Writes train.csv (2,000 rows) and test.csv (500 rows): a synthetic loan book whose eight features
 * sit on very different scales (income in tens of thousands, utilisation a fraction, a ratio in
 * thousandths) and whose label is the string `repaid` or `default`. The outcome follows a logistic
 * model of the standardized features plus noise, so about 10 % of the labels cannot be predicted.
 * Deterministic (seeded): `npx tsx examples/credit-risk/make-data.ts` rewrites the same files.
 */
import { writeFileSync } from 'node:fs';
import { Random } from '../../src/engine/random.ts';

const columns = ['income', 'loan_amount', 'age', 'years_employed', 'open_accounts', 'credit_utilization', 'late_payments', 'debt_to_income_permille', 'outcome'];

function rows(count: number, seed: number): string[] {
  const random = new Random(seed);
  const lines: string[] = [];
  for (let row = 0; row < count; row++) {
    const z = Array.from({ length: 8 }, () => random.normal());
    const income = Math.max(12_000, 58_000 + 22_000 * z[0]!);
    const loan = Math.max(1_000, 15_000 + 9_000 * z[1]!);
    const age = Math.min(80, Math.max(18, 42 + 12 * z[2]!));
    const employed = Math.max(0, Math.min(age - 18, 8 + 6 * z[3]!));
    const accounts = Math.max(0, Math.round(6 + 3 * z[4]!));
    const utilization = Math.min(1, Math.max(0, 0.35 + 0.2 * z[5]!));
    const late = Math.max(0, Math.round(1 + 1.2 * z[6]!));
    const debtPermille = Math.max(0, (loan / income) * 1000 * (1 + 0.1 * z[7]!));
    // Risk rises with utilisation, late payments and debt, falls with income and employment.
    const risk = -1.2 * z[0]! + 0.8 * z[1]! - 0.3 * z[2]! - 0.6 * z[3]! + 1.4 * z[5]! + 1.1 * z[6]! + 0.9 * (debtPermille / 300 - 1) + 0.7 * random.normal();
    const outcome = risk > 1.0 ? 'default' : 'repaid';
    lines.push(
      [income.toFixed(0), loan.toFixed(0), age.toFixed(0), employed.toFixed(1), accounts, utilization.toFixed(3), late, debtPermille.toFixed(1), outcome].join(','),
    );
  }
  return lines;
}

const directory = new URL('.', import.meta.url);
writeFileSync(new URL('train.csv', directory), `${columns.join(',')}\n${rows(2000, 11).join('\n')}\n`);
writeFileSync(new URL('test.csv', directory), `${columns.join(',')}\n${rows(500, 12).join('\n')}\n`);
