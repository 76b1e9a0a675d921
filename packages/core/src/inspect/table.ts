// Column layout as Docker prints tables: Go's text/tabwriter with minwidth 10, padding 3, spaces; the last
// column is not padded. Widths count characters (runes), as tabwriter does.

export function formatTable(rows: readonly (readonly string[])[], options: { minWidth?: number; padding?: number } = {}): string {
  const minWidth = options.minWidth ?? 10;
  const padding = options.padding ?? 3;
  const columns = Math.max(0, ...rows.map((r) => r.length));
  const widths: number[] = [];
  for (let c = 0; c < columns - 1; c++) {
    const w = Math.max(0, ...rows.map((r) => (c < r.length - 1 ? [...(r[c] ?? "")].length : 0)));
    widths.push(Math.max(w + padding, minWidth));
  }
  return rows
    .map((row) =>
      row
        .map((cell, c) => (c < row.length - 1 ? cell + " ".repeat(Math.max(0, widths[c]! - [...cell].length)) : cell))
        .join(""),
    )
    .map((line) => `${line}\n`)
    .join("");
}
