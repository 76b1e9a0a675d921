// Recognises a heredoc marker word such as `<<EOF`, `<<-"EOF"` or `3<<'END'` among COPY/ADD
// arguments, with BuildKit's pattern (parser.ParseHeredoc): the delimiter must be one shell word,
// and any quoting in it turns expansion of the body off.

const HEREDOC = /^(\d*)<<(-?)\s*([^<]*)$/;

export interface HeredocWord {
  name: string;
  chomp: boolean;
  expand: boolean;
}

/** Unquotes one shell word; undefined when it is several words or has an unterminated quote. */
function unquoteSingleWord(text: string): { word: string; quoted: boolean } | undefined {
  let word = "";
  let quoted = false;
  let i = 0;
  let ended = false;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      ended = word.length > 0 || quoted;
      i++;
      continue;
    }
    if (ended) return undefined;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) return undefined;
      word += text.slice(i + 1, end);
      quoted = true;
      i = end + 1;
    } else if (c === '"') {
      quoted = true;
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        word += text[i];
        i++;
      }
      if (i >= text.length) return undefined;
      i++;
    } else if (c === "\\" && i + 1 < text.length) {
      word += text[i + 1];
      i += 2;
    } else {
      word += c;
      i++;
    }
  }
  return word === "" ? undefined : { word, quoted };
}

export function parseHeredocWord(word: string): HeredocWord | undefined {
  const m = HEREDOC.exec(word);
  if (!m) return undefined;
  const rest = m[3] as string;
  if (rest === "") return undefined;
  const unquoted = unquoteSingleWord(rest);
  if (!unquoted) return undefined;
  return { name: unquoted.word, chomp: m[2] === "-", expand: !unquoted.quoted };
}
