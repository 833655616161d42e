// Quoting for the commands the CLI prints for a person to paste into a POSIX shell: a URL with
// `?` or `&`, or a token a user chose, must reach the program as printed.
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** The word as a shell reads it back: bare when nothing in it is special, else single-quoted. */
export function shellQuote(word: string): string {
  return SAFE.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
