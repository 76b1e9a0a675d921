// One line of CSV as Go's encoding/csv reads it with default settings, the format of
// `RUN --mount=...` and `--device=...` values: commas split fields, a field may be wrapped in
// double quotes (`""` is a literal quote inside), and a quote anywhere else is an error.
import { InstructionError } from "./instruction-error.js";

export function csvFields(line: string, what: string): string[] {
  const fail = (column: number, reason: string): InstructionError =>
    new InstructionError(`failed to parse csv ${what}: parse error on line 1, column ${column}: ${reason}`);
  const fields: string[] = [];
  if (line === "") return fields;
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        if (i >= line.length) throw fail(i + 1, 'extraneous or missing " in quoted-field');
        const c = line[i] as string;
        if (c === '"') {
          if (line[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += c;
        i++;
      }
      if (i < line.length && line[i] !== ",") throw fail(i + 1, 'extraneous or missing " in quoted-field');
      fields.push(value);
    } else {
      let end = line.indexOf(",", i);
      if (end === -1) end = line.length;
      const value = line.slice(i, end);
      const quote = value.indexOf('"');
      if (quote !== -1) throw fail(i + quote + 1, 'bare " in non-quoted-field');
      fields.push(value);
      i = end;
    }
    if (i >= line.length) return fields;
    i++; // the comma
  }
}
