import { noTextCipher, openRow, sealRow, type SealedTable, type TextCipher } from '../text-cipher.ts';
import type { RepositoryOptions } from './tenants.ts';

type TenantRow = { readonly tenant_id: string } & Readonly<Record<string, unknown>>;

/** The clock and the tenant-text cipher a repository was built with, defaults filled in. */
export function repositorySettings(options: RepositoryOptions): { now: () => Date; text: TextCipher } {
  return { now: options.now ?? (() => new Date()), text: options.textCipher ?? noTextCipher };
}

/**
 * One table whose tenant text columns are sealed (see text-cipher.ts): seals a row about to be
 * written, and opens a row read back and maps it to its record.
 */
export class SealedRows<Row extends TenantRow, Output> {
  readonly #text: TextCipher;
  readonly #table: SealedTable;
  readonly #toRecord: (row: Row) => Output;

  constructor(text: TextCipher, table: SealedTable, toRecord: (row: Row) => Output) {
    this.#text = text;
    this.#table = table;
    this.#toRecord = toRecord;
  }

  seal(row: Row): Promise<Row> {
    return sealRow(this.#text, this.#table, row);
  }

  open(row: Row): Promise<Output> {
    return openRow(this.#text, this.#table, row).then(this.#toRecord);
  }

  /** Undefined (a row that was not found) stays undefined. */
  async openFound(row: Row | undefined): Promise<Output | undefined> {
    return row === undefined ? undefined : this.open(row);
  }

  openAll(rows: readonly Row[]): Promise<Output[]> {
    return Promise.all(rows.map((row) => this.open(row)));
  }
}
