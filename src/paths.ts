// Path containment, shared by whoever must keep a file operation inside a configured folder:
// the worker checking a checkpoint a child reports, retention deleting a pruned file.
import path from 'node:path';

/** True when `child` is `parent` or lies below it (lexically; resolve symlinks first if they matter). */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
