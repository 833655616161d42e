// Reading, deleting and creating files only inside a configured folder, and never through a
// symbolic link: what a child wrote is the child's to shape, so every entry below the configured
// folder is checked with lstat, the file itself is opened with O_NOFOLLOW and hashed from that
// descriptor, and the descriptor's file must be the one at the real path inside the real
// folder. The configured folder itself may be a link (an operator's choice); nothing below it may.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, realpath, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { isInside } from './paths.js';

/** The first entry from below `dir` down to `file` (itself included) that is a symbolic link. */
export async function symlinkBelow(file: string, dir: string): Promise<string | undefined> {
  let at = dir;
  for (const part of path.relative(dir, file).split(path.sep).filter(Boolean)) {
    at = path.join(at, part);
    if ((await lstat(at)).isSymbolicLink()) return at;
  }
  return undefined;
}

const isMissing = (err: unknown) => (err as { code?: string }).code === 'ENOENT';

/**
 * The outermost of `dirs` that holds `file` (lexically): the walk for links starts there, since a
 * folder inside another (a job's output folder inside its model's) may itself have been replaced.
 */
function holder(file: string, dirs: string[]): string | undefined {
  return dirs.filter((d) => isInside(file, d)).sort((a, b) => a.length - b.length)[0];
}

/**
 * Opens `file` (absolute) for reading when it is a regular file inside one of `dirs`, with no
 * symbolic link below the folder and no second name (a hard link would read a file from
 * elsewhere); throws an Error saying why not. The caller closes the handle.
 */
export async function openInside(file: string, dirs: string[]): Promise<FileHandle> {
  const dir = holder(file, dirs);
  if (!dir) throw new Error(`${file} is outside ${dirs.join(', ')}`);
  const link = await symlinkBelow(file, dir).catch((err: unknown) => {
    throw isMissing(err) ? new Error(`${file} does not exist`) : err;
  });
  if (link) throw new Error(link === file ? `${file} is a symbolic link` : `${file} goes through a symbolic link: ${link}`);
  // O_NONBLOCK: a FIFO put in the file's place opens at once (and is refused below) instead of hanging.
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error(`${file} is not a regular file`);
    if (info.nlink > 1) throw new Error(`${file} has ${info.nlink} hard links; a checkpoint must be a file of its own`);
    // The lstat walk and the open are two steps: the file opened must be the one at the real path.
    const real = await realpath(file);
    const same = await stat(real);
    if (!isInside(real, await realpath(dir)) || same.ino !== info.ino || same.dev !== info.dev) {
      throw new Error(`${file} changed while it was being opened`);
    }
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Size and sha256 of what an open file holds, read from its descriptor. */
export async function digestOf(handle: FileHandle): Promise<{ sizeBytes: number; sha256: string }> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 20);
  let sizeBytes = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, sizeBytes);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    sizeBytes += bytesRead;
  }
  return { sizeBytes, sha256: hash.digest('hex') };
}

/**
 * Why `file` is no longer exactly what was registered (inside `dirs`, no link, the same size and
 * sha256), or undefined when it still is.
 */
export async function fileMismatch(file: string, dirs: string[], registered: { sizeBytes: number; sha256: string }): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    handle = await openInside(file, dirs);
  } catch (err) {
    return `checkpoint file refused: ${(err as Error).message}`;
  }
  try {
    const now = await digestOf(handle);
    if (now.sha256 === registered.sha256 && now.sizeBytes === registered.sizeBytes) return undefined;
    return `checkpoint file ${file} no longer matches its registration: sha256 ${now.sha256} (${now.sizeBytes} bytes), registered ${registered.sha256} (${registered.sizeBytes} bytes)`;
  } finally {
    await handle.close();
  }
}

/**
 * Deletes `file` when it is a regular file inside `dir` with no symbolic link below the folder;
 * otherwise deletes nothing and says why. A file already gone is not an error.
 */
export async function removeInside(file: string, dir: string): Promise<string | undefined> {
  if (!isInside(file, dir) || file === dir) return `${file} is outside ${dir}`;
  try {
    const link = await symlinkBelow(file, dir);
    if (link) return `${file} goes through a symbolic link: ${link}`;
    if (!(await lstat(file)).isFile()) return `${file} is not a regular file`;
    if (!isInside(await realpath(path.dirname(file)), await realpath(dir))) return `${file} is outside ${dir}`;
    await unlink(file);
    return undefined;
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/** Creates `dir` below `root` (made first, as configured) one folder at a time, never through a link. */
export async function mkdirBelow(dir: string, root: string): Promise<void> {
  if (!isInside(dir, root)) throw new Error(`${dir} is outside ${root}`);
  await mkdir(root, { recursive: true });
  let at = root;
  for (const part of path.relative(root, dir).split(path.sep).filter(Boolean)) {
    at = path.join(at, part);
    await mkdir(at).catch((err: unknown) => {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
    });
    const info = await lstat(at);
    if (!info.isDirectory()) throw new Error(`${at} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}; refusing to write through it`);
  }
}
